//! `tocsin serve` as a library: [`App::build`] opens and migrates storage,
//! provisions the config file's objects, loads every key and binds the
//! listener; [`App::run_until_stopped`] serves HTTP and runs the workers
//! (escalation, heartbeats, notifications, retention) until told to stop,
//! then shuts down cleanly.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tocsin_config::Config;
use tocsin_store::Store;
use tokio::sync::{Notify, watch};

pub fn load_config(path: &Path) -> Result<Config> {
    load_config_with_refs(path).map(|(c, _)| c)
}

/// [`load_config`], with how each secret was written (for storage and export).
pub fn load_config_with_refs(path: &Path) -> Result<(Config, tocsin_config::Refs)> {
    tocsin_config::load_with_refs(path).map_err(|e| {
        let n = e.problems.len();
        anyhow::anyhow!(
            "{e}\n{n} problem{} in {}; fix {} and try again (`tocsin check-config {}` checks without starting)",
            if n == 1 { "" } else { "s" },
            path.display(),
            if n == 1 { "it" } else { "them" },
            path.display()
        )
    })
}

pub fn check_config(file: &Path) -> Result<()> {
    let config = load_config(file)?;
    println!("ok: {}: {}", file.display(), config.summary());
    Ok(())
}

pub async fn open_store(url: &str, config: Option<&Config>) -> Result<Box<dyn Store>> {
    let max = config
        .and_then(|c| c.database.max_connections)
        .unwrap_or(10);
    tocsin_store::connect(url, max).await.with_context(|| {
        format!(
            "cannot open the database {}",
            tocsin_config::validate::redact_url(url)
        )
    })
}

pub use tocsin_app::catalog::generate_key;

/// Provision the config file into the stored catalog, logging what changed.
async fn provision(
    store: &dyn Store,
    file: &str,
    config: &Config,
    refs: &tocsin_config::Refs,
) -> Result<()> {
    let actor = tocsin_app::catalog::file_actor(file);
    let plan = tocsin_app::catalog::provision(store, file, config, refs, &actor, Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("provisioning {file}: {e}"))?;
    log_plan(file, &plan);
    Ok(())
}

/// One log line per change a provisioning made.
fn log_plan(file: &str, plan: &tocsin_app::Plan) {
    for change in &plan.changes {
        tracing::info!(file, change = %change, "provisioned");
    }
}

/// What `tocsin serve` is told on its command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
}

/// A built server: storage open and provisioned, keys loaded, the listener
/// bound, every worker made. [`App::run_until_stopped`] runs it.
pub struct App {
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    router: axum::Router,
    metrics: Arc<tocsin_web::Metrics>,
    escalate_now: Arc<Notify>,
    dispatch_now: Arc<Notify>,
    escalation: tocsin_engine::EscalationWorker,
    heartbeats: tocsin_engine::HeartbeatWorker,
    dispatcher: Arc<tocsin_engine::Dispatcher>,
    status_worker: Arc<tocsin_engine::StatusWorker>,
    retention: Retention,
    shutdown_grace: Duration,
    sources: usize,
    banner: Vec<String>,
    application: Arc<tocsin_app::Application>,
    config_path: PathBuf,
    /// `server.tls`: serve HTTPS with this certificate.
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl App {
    /// Open storage (migrating it), provision the config file's objects,
    /// load or create every key, and bind the listener.
    pub async fn build(opts: &ServeOptions) -> Result<App> {
        let (config, refs) = load_config_with_refs(&opts.config)?;
        let listen = opts
            .listen
            .clone()
            .unwrap_or_else(|| config.listen().to_owned());
        let url = opts
            .database_url
            .clone()
            .unwrap_or_else(|| config.database_url().to_owned());
        let store: Arc<dyn Store> = Arc::from(open_store(&url, Some(&config)).await?);
        let file = owner_name(&opts.config);
        provision(store.as_ref(), &file, &config, &refs).await?;
        let catalogs = tocsin_app::Catalogs::open(store.clone(), Utc::now())
            .await
            .map_err(|e| anyhow::anyhow!("loading the stored catalog: {e}"))?;
        let loaded = catalogs.current();

        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
            format!("cannot listen on {listen}; is another process using it? Set server.listen, --listen or TOCSIN_LISTEN")
        })?;
        let addr = listener.local_addr()?;
        let tls = match &config.server.tls {
            Some(t) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem(
                    t.cert.clone().into_bytes(),
                    t.key.clone().into_bytes(),
                )
                .await
                .context("server.tls: the certificate or key cannot be used; give a PEM certificate chain (cert_file) and its private key (key_file)")?,
            ),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = opts
            .public_url
            .clone()
            .or_else(|| config.server.public_url.clone())
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let public_url = public_url.trim_end_matches('/').to_owned();
        let channels_now = channels(&loaded.catalog, &public_url)?;
        let application = tocsin_app::Application::new(
            store.clone(),
            catalogs.clone(),
            Arc::new(tocsin_app::SystemClock),
        );
        let ui = ui_settings(&config, tls.is_some(), &public_url);
        let oidc = ui.oidc.is_some();
        let state = tocsin_web::AppState::new(
            tocsin_web::WebSettings {
                body_limit: config.body_limit(),
                public_url: public_url.clone(),
                ui,
                status: tocsin_app::status::StatusSettings::from_config(&config),
            },
            &application,
            channels_now.clone(),
        )?;
        let metrics = state.metrics_handle();
        let escalate_now = state.escalation_wakeup();
        let dispatch_now = state.dispatch_wakeup();
        let router = tocsin_web::app(state.clone());
        let mut banner = banner(&loaded, &url, store.backend(), addr, scheme, &public_url);
        banner.push(format!("web UI: {public_url}/"));
        match application.setup_link(oidc).await {
            Ok(Some(secret)) => banner.push(format!(
                "no admin can sign in yet: open {public_url}/setup/{secret} to give one a password (the link works once), or run `tocsin users set-password USER`"
            )),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not make a setup link"),
        }

        let mut escalation =
            tocsin_engine::EscalationWorker::new(store.clone(), application.catalog.clone());
        escalation.queued = Some(dispatch_now.clone());
        // A new alert's first level runs in its ingest transaction.
        store.run_first_levels(Arc::new(escalation.planner()));
        let heartbeats = tocsin_engine::HeartbeatWorker::new(application.clone());
        let mut dispatcher =
            tocsin_engine::Dispatcher::new(store.clone(), channels_now.clone(), &public_url);
        dispatcher.links = Some(tocsin_domain::links::LinkSigner::new(
            &loaded.secrets.link_secret,
        ));
        dispatcher.link_ttl = config.action_link_ttl().as_chrono();
        dispatcher.bundle_window = config.bundle_window().as_chrono();
        let retry = &config.notifications.retry;
        dispatcher.retry = tocsin_engine::RetryPolicy {
            attempts: i64::from(retry.attempts()),
            backoff: retry.backoff().as_chrono(),
            max_backoff: retry.max_backoff().as_chrono(),
        };
        let dispatcher = Arc::new(dispatcher);
        let status_settings = tocsin_app::status::StatusSettings::from_config(&config);
        application.set_status_title(&status_settings.title);
        let mut status_worker = tocsin_engine::StatusWorker::new(
            application.clone(),
            channels_now.clone(),
            &public_url,
        );
        status_worker.retry = dispatcher.retry;
        let status_worker = Arc::new(status_worker);
        // Every catalog put in effect later reaches the channels at once,
        // for pages and test notifications (the HTTP state and the
        // workers' catalog subscribed themselves).
        {
            let dispatcher = dispatcher.clone();
            let status_worker = status_worker.clone();
            // Channels are rebuilt only when what they are made of changed.
            let made_of = std::sync::Mutex::new(channel_inputs(&loaded.catalog));
            catalogs.subscribe(move |loaded| {
                let now = channel_inputs(&loaded.catalog);
                match made_of.lock() {
                    Ok(mut was) if *was != now => *was = now,
                    _ => return,
                }
                match channels(&loaded.catalog, &public_url) {
                    Ok(c) => {
                        state.set_channels(c.clone());
                        status_worker.set_channels(c.clone());
                        dispatcher.set_channels(c);
                    }
                    Err(e) => tracing::error!(error = %e, "the new providers cannot be used; notifications keep the ones in effect"),
                }
            });
        }
        let shutdown_grace = config
            .server
            .shutdown_timeout
            .map(|d| d.as_duration())
            .unwrap_or(Duration::from_secs(10));
        Ok(App {
            store,
            listener,
            router,
            metrics,
            escalate_now,
            dispatch_now,
            escalation,
            heartbeats,
            dispatcher,
            status_worker,
            retention: Retention {
                alerts: config.retention().map(|k| k.as_chrono()),
                audit: config.audit_retention().map(|k| k.as_chrono()),
            },
            shutdown_grace,
            sources: loaded.catalog.sources.len(),
            banner,
            application,
            config_path: opts.config.clone(),
            tls,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Result<std::net::SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// What `serve` prints at start: where it listens, its storage, and the
    /// URL of every source and heartbeat (the one place keys are printed).
    pub fn banner(&self) -> &[String] {
        &self.banner
    }

    /// Serve HTTP and run every worker until `stop` resolves. Then shut down
    /// cleanly: no new connections and no new claims; requests in flight
    /// are answered, and messages being sent are sent and recorded (a sent
    /// message is never sent again after a restart), within
    /// `server.shutdown_timeout` for requests and the send timeout for
    /// messages.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let App {
            store,
            listener,
            router,
            metrics,
            escalate_now,
            dispatch_now,
            escalation,
            heartbeats,
            dispatcher,
            status_worker,
            retention,
            shutdown_grace,
            sources,
            banner: _,
            application,
            config_path,
            tls,
        } = self;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, storage = store.backend(), sources, "serving");
        let (stop_tx, stop_rx) = watch::channel(false);
        let send_timeout = dispatcher.send_timeout;
        let mut workers = tokio::task::JoinSet::new();
        workers.spawn(prune_loop(store.clone(), retention, stop_rx.clone()));
        let escalate_wake = escalate_now.clone();
        let dispatch_wake = dispatch_now.clone();
        workers.spawn(escalate_loop(
            escalation,
            metrics.clone(),
            escalate_now.clone(),
            dispatch_now.clone(),
            stop_rx.clone(),
        ));
        workers.spawn(heartbeat_loop(heartbeats, escalate_now, stop_rx.clone()));
        workers.spawn(status_loop(status_worker, stop_rx.clone()));
        let report_metrics = metrics.clone();
        let clock = application.clock.clone();
        workers.spawn(
            application
                .catalogs
                .clone()
                .watch(move || clock.now(), stop_rx.clone()),
        );
        workers.spawn(reprovision_on_hangup(
            application,
            config_path,
            stop_rx.clone(),
        ));
        workers.spawn(dispatcher.run(
            Arc::new(tocsin_engine::SystemClock),
            dispatch_now,
            stop_rx.clone(),
            WORKER_POLL,
            // Claims are per contact and take everything due for it, so
            // there is nothing to gather: claim at once.
            Duration::ZERO,
            Arc::new(move |r: &tocsin_engine::DispatchReport| {
                for (channel, outcome) in &r.attempts {
                    report_metrics.delivery(channel, outcome);
                }
                report_metrics.claimed("bundle", r.claimed as u64, "page", r.taken_over as u64);
            }),
        ));
        // Wake-ups from other nodes (PostgreSQL): work another node queued
        // is run by whichever node is free, without waiting for a poll.
        match store.listen().await {
            Ok(Some(wakes)) => {
                workers.spawn(wake_loop(
                    wakes,
                    metrics.clone(),
                    escalate_wake,
                    dispatch_wake,
                    stop_rx.clone(),
                ));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other nodes' wake-ups; polling only")
            }
        }

        let mut http_stop = stop_rx.clone();
        tokio::spawn(async move {
            stop.await;
            tracing::info!(
                "shutting down: no new connections or claims; finishing in-flight requests and messages"
            );
            let _ = stop_tx.send(true);
        });
        let server = async move {
            match tls {
                None => axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                })
                .await
                .context("the HTTP server failed"),
                Some(tls) => {
                    let handle = axum_server::Handle::new();
                    let stopper = handle.clone();
                    tokio::spawn(async move {
                        let _ = http_stop.wait_for(|s| *s).await;
                        stopper.graceful_shutdown(Some(shutdown_grace));
                    });
                    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
                        .handle(handle)
                        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                        .await
                        .context("the HTTPS server failed")
                }
            }
        };
        let mut grace_stop = stop_rx.clone();
        tokio::select! {
            r = server => r?,
            _ = async {
                let _ = grace_stop.wait_for(|s| *s).await;
                tokio::time::sleep(shutdown_grace).await;
            } => {
                tracing::warn!(?shutdown_grace, "in-flight requests did not finish in time; exiting");
            }
        }
        // Wait for the workers to finish what they claimed.
        let workers_done = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(send_timeout + Duration::from_secs(5), workers_done)
            .await
            .is_err()
        {
            tracing::warn!(
                "workers did not finish in time; what they held is taken over when its lease runs out"
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Run `serve` until SIGTERM or SIGINT.
pub async fn serve(opts: &ServeOptions) -> Result<()> {
    let app = App::build(opts).await?;
    for line in app.banner() {
        println!("{line}");
    }
    app.run_until_stopped(shutdown_signal()).await
}

/// The name a served config file owns its objects by: its absolute path
/// (so `tocsin.yaml` and `./tocsin.yaml` are one owner).
fn owner_name(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// On SIGHUP, read the config file again and provision it: the catalog
/// changes without a restart. A file with an error changes nothing (each
/// problem is logged with its key path) and the catalog in effect stays.
async fn reprovision_on_hangup(
    application: Arc<tocsin_app::Application>,
    path: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; restart to re-read the config file");
            return;
        };
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                r = hup.recv() => if r.is_none() { return },
            }
            let file = owner_name(&path);
            tracing::info!(file, "SIGHUP: re-reading the config file");
            let (config, refs) = match load_config_with_refs(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(file, error = %e, "the config file has errors; nothing changed, the catalog in effect stays");
                    continue;
                }
            };
            match application.provision(&file, &config, &refs).await {
                Ok(plan) => log_plan(&file, &plan),
                Err(e) => {
                    tracing::error!(file, error = %e, "provisioning failed; nothing changed, the catalog in effect stays")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (application, path);
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// The start-up lines: the one place keys are printed, because the operator
/// needs to paste them.
/// The web UI's sign-in settings from the file.
fn ui_settings(
    config: &tocsin_config::Config,
    tls: bool,
    public_url: &str,
) -> tocsin_web::ui::UiSettings {
    tocsin_web::ui::UiSettings {
        sessions: tocsin_app::signin::SessionPolicy {
            idle: config.session_idle().as_chrono(),
            lifetime: config.session_lifetime().as_chrono(),
        },
        secure_cookies: tls || public_url.starts_with("https://"),
        oidc: config
            .auth
            .oidc
            .as_ref()
            .map(|o| tocsin_web::ui::OidcSettings {
                issuer: o.issuer.trim_end_matches('/').to_owned(),
                client_id: o.client_id.clone(),
                client_secret: o.client_secret.clone().unwrap_or_default(),
                scopes: if o.scopes.is_empty() {
                    vec!["email".into(), "profile".into()]
                } else {
                    o.scopes.clone()
                },
                allow_unknown_users: o.allow_unknown_users,
                label: o
                    .label
                    .clone()
                    .unwrap_or_else(|| "Sign in with single sign-on".into()),
            }),
    }
}

/// `tocsin users set-password USER`: set a user's web UI password on the
/// server's own storage. Their other sessions end.
pub async fn set_password(
    config: Option<&std::path::Path>,
    database_url: Option<String>,
    user: &str,
    password: &str,
) -> Result<()> {
    let config = match config {
        Some(path) => Some(load_config(path)?),
        None => None,
    };
    let url = database_url
        .or_else(|| config.as_ref().map(|c| c.database_url().to_owned()))
        .unwrap_or_else(|| tocsin_config::DEFAULT_DATABASE_URL.to_owned());
    let store: Arc<dyn Store> = Arc::from(open_store(&url, config.as_ref()).await?);
    let catalogs = tocsin_app::Catalogs::open(store.clone(), Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("loading the stored catalog: {e}"))?;
    let app = tocsin_app::Application::new(store, catalogs, Arc::new(tocsin_app::SystemClock));
    let actor = tocsin_store::Actor::new("operator", "cli (tocsin users set-password)");
    app.set_password(user, password, None, &actor)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn banner(
    loaded: &tocsin_app::Loaded,
    url: &str,
    backend: &str,
    addr: std::net::SocketAddr,
    scheme: &str,
    public_url: &str,
) -> Vec<String> {
    let mut out = vec![
        format!(
            "Tocsin {} listening on {scheme}://{addr}",
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "storage: {backend} {}",
            tocsin_config::validate::redact_url(url)
        ),
    ];
    let secrets = &loaded.secrets;
    for s in loaded.catalog.sources.values() {
        let Some(key) = secrets.source_keys.get(&s.id) else {
            continue;
        };
        out.push(match s.kind {
            tocsin_config::SourceType::Prometheus => format!(
                "source {} ({}, grouping: {}): {public_url}/api/v1/events/prometheus/{key}",
                s.id,
                s.kind.as_str(),
                match s.grouping {
                    tocsin_domain::Grouping::Group => "group",
                    tocsin_domain::Grouping::Alert => "alert",
                }
            ),
            tocsin_config::SourceType::Pagerduty => format!(
                "source {} (pagerduty): POST {public_url}/v2/enqueue with routing_key {key}",
                s.id
            ),
            tocsin_config::SourceType::Opsgenie => format!(
                "source {} (opsgenie): API base {public_url} with Authorization: GenieKey {key} (Alertmanager's opsgenie_configs api_url: {public_url}/)",
                s.id
            ),
            tocsin_config::SourceType::Ilert => format!(
                "source {} (ilert): POST {public_url}/api/events with integrationKey {key}",
                s.id
            ),
        });
    }
    for h in loaded.catalog.heartbeats.values() {
        if let Some(key) = secrets.heartbeat_keys.get(&h.id) {
            out.push(format!(
                "heartbeat {} (every {}, grace {}): {public_url}/api/v1/heartbeats/{key}",
                h.id, h.interval, h.grace
            ));
        }
    }
    out
}

/// How often due escalation steps, heartbeats and notifications are looked
/// for: well within the 1 s promise.
const WORKER_POLL: Duration = Duration::from_millis(250);

/// After a wake-up, wait this long so that a burst is handled in one round
/// (one transaction) rather than one round per alert.
const WAKE_COALESCE: Duration = Duration::from_millis(20);

/// Run due escalation steps until stopped. A round that has begun is
/// finished (each step commits with its notifications) before it stops.
async fn escalate_loop(
    worker: tocsin_engine::EscalationWorker,
    metrics: Arc<tocsin_web::Metrics>,
    wake: Arc<Notify>,
    dispatch_now: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tocsin_engine::poll_every(WORKER_POLL);
    while !*stop.borrow() {
        // Every poll, and soon after ingest has created alerts.
        tokio::select! {
            _ = stop.changed() => continue,
            _ = every.tick() => {}
            _ = wake.notified() => tokio::time::sleep(WAKE_COALESCE).await,
        }
        match worker.run_due(&tocsin_engine::SystemClock).await {
            Ok(r) if r.steps > 0 => {
                if r.notifications > 0 {
                    dispatch_now.notify_one();
                }
                metrics.escalation(r.steps as u64, r.notifications as u64, r.max_lag_ms);
                metrics.claimed("step", r.claimed as u64, "step", r.taken_over as u64);
                tracing::debug!(
                    steps = r.steps,
                    notifications = r.notifications,
                    lag_ms = r.max_lag_ms,
                    "escalation tick"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "escalation: storage unavailable; retrying"),
        }
    }
}

/// Pass other nodes' wake-ups on to this node's workers, until stopped.
async fn wake_loop(
    mut wakes: tokio::sync::mpsc::Receiver<tocsin_store::Wake>,
    metrics: Arc<tocsin_web::Metrics>,
    escalate_now: Arc<Notify>,
    dispatch_now: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let wake = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            w = wakes.recv() => match w {
                Some(w) => w,
                None => return,
            },
        };
        let latency = (Utc::now() - wake.sent_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        match wake.topic {
            tocsin_store::WakeTopic::Escalate => {
                metrics.wakeup("escalate", latency);
                escalate_now.notify_one();
            }
            tocsin_store::WakeTopic::Dispatch => {
                metrics.wakeup("dispatch", latency);
                dispatch_now.notify_one();
            }
        }
    }
}

/// Check heartbeats every poll: an overdue one is noticed well within a
/// second of its due time, also right after a restart.
async fn heartbeat_loop(
    worker: tocsin_engine::HeartbeatWorker,
    escalate_now: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tocsin_engine::poll_every(WORKER_POLL);
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => continue,
            _ = every.tick() => {}
        }
        match worker.tick(Utc::now()).await {
            Ok(r) if !r.overdue.is_empty() => escalate_now.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeats: storage unavailable; retrying"),
        }
    }
}
/// Incidents resolve by themselves (and subscribers are told) within a
/// second of their last linked alert resolving.
async fn status_loop(worker: Arc<tocsin_engine::StatusWorker>, mut stop: watch::Receiver<bool>) {
    let mut every = tocsin_engine::poll_every(Duration::from_secs(1));
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => continue,
            _ = every.tick() => {}
        }
        if let Err(e) = worker.tick(Utc::now()).await {
            tracing::warn!(error = %e, "incidents and status page: storage unavailable; retrying");
        }
    }
}

/// What the channels are made of: the providers, and the signing secret of
/// each webhook URL.
fn channel_inputs(
    catalog: &tocsin_domain::Catalog,
) -> (
    tocsin_domain::catalog::Providers,
    std::collections::HashMap<String, String>,
) {
    let secrets = catalog
        .users
        .values()
        .flat_map(|u| &u.contacts)
        .filter(|c| c.channel == "webhook")
        .filter_map(|c| Some((c.address.clone(), c.secret.clone()?)))
        .chain(
            catalog
                .services
                .values()
                .flat_map(|s| &s.announce)
                .filter(|a| a.channel == "webhook")
                .filter_map(|a| Some((a.address.clone(), a.secret.clone()?))),
        )
        .collect();
    (catalog.providers.clone(), secrets)
}

/// The notification channels the config's providers enable.
fn channels(
    catalog: &tocsin_domain::Catalog,
    public_url: &str,
) -> Result<Vec<Arc<dyn tocsin_notify::Channel>>> {
    use tocsin_domain::catalog::SmtpTls;
    let mut out: Vec<Arc<dyn tocsin_notify::Channel>> = Vec::new();
    if let Some(smtp) = &catalog.providers.smtp {
        use tocsin_notify::email::{Email, SmtpSettings, Tls};
        let settings = SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port,
            from: smtp.from.clone(),
            tls: match smtp.tls {
                SmtpTls::None => Tls::None,
                SmtpTls::Starttls => Tls::Starttls,
                SmtpTls::Tls => Tls::Tls,
            },
            username: smtp.username.clone(),
            password: smtp.password.clone(),
        };
        out.push(Arc::new(
            Email::new(&settings).map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    if let Some(ntfy) = &catalog.providers.ntfy {
        let channel = tocsin_notify::ntfy::Ntfy::new(&ntfy.base_url, ntfy.token.clone())
            .map_err(|e| anyhow::anyhow!("providers.ntfy: {e}"))?;
        out.push(Arc::new(channel));
    }
    if let Some(t) = &catalog.providers.twilio {
        use tocsin_notify::twilio::{TwilioSettings, TwilioSms, TwilioVoice};
        let settings = TwilioSettings {
            account_sid: t.account_sid.clone(),
            auth_token: t.auth_token.clone(),
            from: t.from.clone(),
            api_base: t.api_base.clone(),
        };
        out.push(Arc::new(
            TwilioSms::new(&settings).map_err(|e| anyhow::anyhow!("providers.twilio: {e}"))?,
        ));
        out.push(Arc::new(
            TwilioVoice::new(&settings, public_url)
                .map_err(|e| anyhow::anyhow!("providers.twilio: {e}"))?,
        ));
    }
    // Slack incoming webhooks need no provider; bot messages need the token.
    let slack = catalog.providers.slack.as_ref();
    let channel = tocsin_notify::slack::Slack::new(
        slack.map_or("https://slack.com/api", |s| s.api_base.as_str()),
        slack.and_then(|s| s.bot_token.clone()),
    )
    .map_err(|e| anyhow::anyhow!("providers.slack: {e}"))?;
    out.push(Arc::new(channel));
    // Webhooks need no provider; contacts with a `secret` get signed requests.
    let (_, secrets) = channel_inputs(catalog);
    let webhook =
        tocsin_notify::webhook::Webhook::new(secrets).map_err(|e| anyhow::anyhow!("{e}"))?;
    out.push(Arc::new(webhook));
    Ok(out)
}

/// How long resolved alerts and audit entries are kept (`None`: forever).
#[derive(Debug, Clone, Copy)]
struct Retention {
    alerts: Option<chrono::TimeDelta>,
    audit: Option<chrono::TimeDelta>,
}

/// Delete resolved alerts and audit entries older than their retention:
/// a minute after start, then hourly, until stopped.
async fn prune_loop(store: Arc<dyn Store>, keep: Retention, mut stop: watch::Receiver<bool>) {
    const BATCH: u32 = 1000;
    tokio::select! {
        _ = stop.wait_for(|s| *s) => return,
        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
    }
    let mut every = tocsin_engine::poll_every(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = every.tick() => {}
        }
        // Ended and expired sessions are kept a day (a stale cookie is
        // told it signed out), then go.
        match store
            .prune_sessions(Utc::now() - chrono::TimeDelta::days(1))
            .await
        {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "retention: pruned ended sessions"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "retention: pruning sessions failed; will try again")
            }
        }
        for (what, keep) in [
            ("resolved alerts", keep.alerts),
            ("audit entries", keep.audit),
        ] {
            let Some(keep) = keep else { continue };
            let before = Utc::now() - keep;
            let mut total = 0u64;
            loop {
                let pruned = match what {
                    "audit entries" => store.prune_audit(before, BATCH).await,
                    _ => store.prune_resolved(before, BATCH).await,
                };
                match pruned {
                    Ok(n) => {
                        total += n;
                        if n < u64::from(BATCH) || *stop.borrow() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "retention: pruning {what} failed; will try again");
                        break;
                    }
                }
            }
            if total > 0 {
                tracing::info!(deleted = total, %before, "retention: pruned {what}");
            }
        }
    }
}

/// Resolves at SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
