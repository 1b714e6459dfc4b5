//! A real server on loopback for the HTTP contract tests: the app built
//! from a config text, on SQLite in a temporary directory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

/// The link-signing secret of every test server.
pub const LINK_SECRET: &str = "link-secret-0123456789abcdef";

/// Serve the app for `config_text` with `channels`; its base URL, and the
/// directory that holds its database (removed when dropped).
///
/// Source and heartbeat keys come from the config; calendar feed tokens are
/// `feed-{schedule}-0123456789abcdef` and `feed-user-{user}-0123456789`.
pub async fn serve(
    config_text: &str,
    channels: Vec<Arc<dyn tocsin_notify::Channel>>,
) -> (String, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = tocsin_config::from_str(config_text, Path::new("."), &|_| None).unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store: Arc<dyn tocsin_store::Store> =
        Arc::from(tocsin_store::connect(&url, 4).await.unwrap());
    let secrets = tocsin_web::Secrets {
        source_keys: config
            .sources
            .iter()
            .map(|s| (s.id.clone(), s.key.clone().unwrap()))
            .collect(),
        schedule_feeds: config
            .schedules
            .iter()
            .map(|s| (s.id.clone(), format!("feed-{}-0123456789abcdef", s.id)))
            .collect(),
        user_feeds: config
            .users
            .iter()
            .map(|u| (u.id.clone(), format!("feed-user-{}-0123456789", u.id)))
            .collect(),
        link_secret: LINK_SECRET.into(),
        heartbeat_keys: config
            .heartbeats
            .iter()
            .map(|h| (h.id.clone(), h.key.clone().unwrap()))
            .collect(),
    };
    let state = tocsin_web::AppState::new(&config, store, &secrets, "http://tocsin.test", channels)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, tocsin_web::app(state)).await });
    (format!("http://{addr}"), dir)
}
