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
    let (base, dir, _) = serve_app(config_text, channels, Default::default()).await;
    (base, dir)
}

/// [`serve`] with the web UI's settings; also the application, for
/// setting passwords and making setup links.
pub async fn serve_app(
    config_text: &str,
    channels: Vec<Arc<dyn tocsin_notify::Channel>>,
    ui: tocsin_web::ui::UiSettings,
) -> (String, tempfile::TempDir, Arc<tocsin_app::Application>) {
    serve_on(config_text, channels, ui, None).await
}

/// A fresh database on the test PostgreSQL (`TOCSIN_TEST_POSTGRES_URL`);
/// `None` when none is given outside CI.
pub async fn fresh_postgres() -> Option<String> {
    let Ok(base) = std::env::var("TOCSIN_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "TOCSIN_TEST_POSTGRES_URL must be set under CI (scripts/test sets it)"
        );
        eprintln!("TOCSIN_TEST_POSTGRES_URL not set: the PostgreSQL case is skipped");
        return None;
    };
    use sqlx::Connection;
    let name = format!("tocsin_w_{}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    Some(format!("{}/{name}", base.rsplit_once('/').unwrap().0))
}

/// [`serve_app`] on the database `url` names (`None`: SQLite in the
/// returned directory).
pub async fn serve_on(
    config_text: &str,
    channels: Vec<Arc<dyn tocsin_notify::Channel>>,
    ui: tocsin_web::ui::UiSettings,
    url: Option<String>,
) -> (String, tempfile::TempDir, Arc<tocsin_app::Application>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (config, refs) =
        tocsin_config::from_str_with_refs(config_text, Path::new("."), &|_| None).unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("t.db").display()));
    let store: Arc<dyn tocsin_store::Store> =
        Arc::from(tocsin_store::connect(&url, 4).await.unwrap());
    // Known feed tokens and link key, stored before the catalog loads them.
    let now = chrono::Utc::now();
    for s in &config.schedules {
        let token = format!("feed-{}-0123456789abcdef", s.id);
        store
            .named_secret("ical-schedule", &s.id, &token, now)
            .await
            .unwrap();
    }
    for u in &config.users {
        let token = format!("feed-user-{}-0123456789", u.id);
        store
            .named_secret("ical-user", &u.id, &token, now)
            .await
            .unwrap();
    }
    store
        .named_secret("links", "hmac", LINK_SECRET, now)
        .await
        .unwrap();
    // The server's own path: provision the file, load the stored catalog.
    tocsin_app::catalog::provision(
        store.as_ref(),
        "test.yaml",
        &config,
        &refs,
        &tocsin_app::catalog::file_actor("test.yaml"),
        now,
    )
    .await
    .unwrap();
    let catalogs = tocsin_app::Catalogs::open(store.clone(), now)
        .await
        .unwrap();
    let app = tocsin_app::Application::new(store, catalogs, Arc::new(tocsin_app::SystemClock));
    let state = tocsin_web::AppState::new(
        tocsin_web::WebSettings {
            body_limit: config.body_limit(),
            public_url: "http://tocsin.test".into(),
            ui,
            status: tocsin_app::status::StatusSettings::from_config(&config),
        },
        &app,
        channels,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            tocsin_web::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (format!("http://{addr}"), dir, app)
}

/// Send `method path` with a Bearer `token` and a JSON `body`; the status
/// and the answer (JSON, or the text as a JSON string).
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A test server and a client for it.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Serve `config_text` (no notification channels).
    pub async fn start(config_text: &str) -> Self {
        let (base, dir) = serve(config_text, vec![]).await;
        Server {
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// The same on PostgreSQL (`pg`) or SQLite; `None` when PostgreSQL is
    /// asked for and there is none outside CI.
    pub async fn start_on(config_text: &str, pg: bool) -> Option<Self> {
        let url = if pg {
            Some(fresh_postgres().await?)
        } else {
            None
        };
        let (base, dir, _) = serve_on(config_text, vec![], Default::default(), url).await;
        Some(Server {
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    /// See [`call`].
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        call(&self.http, &self.base, method, path, token, body).await
    }
}
