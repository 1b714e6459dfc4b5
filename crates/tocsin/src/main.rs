//! The `tocsin` binary: command line, configuration and start-up. All the
//! work happens in the library crates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use tocsin_config::Config;
use tocsin_store::{ProvisionedObject, Store};

mod client;

const ABOUT: &str = "Tocsin: self-hosted on-call and incident alerting.

Prometheus Alertmanager posts alerts to Tocsin's webhook, and anything that
speaks the PagerDuty Events v2, Opsgenie or ilert event APIs can too; Tocsin
stores them durably, deduplicates them, routes them to an escalation policy,
pages whoever is on call (email, SMS, voice, push, Slack, webhook) until
someone accepts, and watches heartbeats. Storage is embedded SQLite by
default, or PostgreSQL for several nodes.";

const AFTER_HELP: &str = "Quick start:
  tocsin serve --config examples/tocsin.yaml   # prints each source's and heartbeat's URL
  tocsin check-config tocsin.yaml              # validate a config file
  tocsin oncall --token $TOKEN                 # who is on call now, per schedule

Every flag can also be set with the TOCSIN_* environment variable shown.";

#[derive(Parser)]
#[command(name = "tocsin", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = "TOCSIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: apply migrations, provision the config file's objects
    /// into storage, print each source's and heartbeat's URL and serve until SIGTERM/SIGINT.
    Serve {
        /// The tocsin.yaml to apply at start.
        #[arg(long, short, env = "TOCSIN_CONFIG")]
        config: PathBuf,
        /// Listen address (host:port); overrides server.listen.
        #[arg(long, env = "TOCSIN_LISTEN")]
        listen: Option<String>,
        /// Database URL (sqlite://FILE or postgres://…); overrides database.url.
        #[arg(long, env = "TOCSIN_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Base URL of links Tocsin prints and sends; overrides server.public_url
        /// (default: http://LISTEN-ADDRESS).
        #[arg(long, env = "TOCSIN_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Validate a config file: syntax, keys, references, durations,
    /// templates. Exits non-zero and lists every problem when it is invalid.
    CheckConfig {
        /// The tocsin.yaml to check.
        file: PathBuf,
    },
    /// Who is on call, now or at --at, in one schedule or in all of them
    /// (asks a running server).
    Oncall {
        /// A schedule id; all schedules when left out.
        schedule: Option<String>,
        /// An instant (RFC 3339, e.g. 2026-12-24T20:00:00+01:00); now when left out.
        #[arg(long)]
        at: Option<String>,
        /// The server's base URL.
        #[arg(long, env = "TOCSIN_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// An API token from api_tokens (any role).
        #[arg(long, env = "TOCSIN_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Apply database migrations and exit (serve also does this at start).
    Migrate {
        /// Take database.url from this config file.
        #[arg(long, short, env = "TOCSIN_CONFIG")]
        config: Option<PathBuf>,
        /// Database URL; overrides the config file.
        #[arg(long, env = "TOCSIN_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    // One TLS crypto provider (ring) for every client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Oncall {
            schedule,
            at,
            server,
            token,
        } => {
            let c = client::Client::new(&server, &token)?;
            println!(
                "{}",
                client::oncall(&c, schedule.as_deref(), at.as_deref()).await?
            );
            Ok(())
        }
        Command::Migrate {
            config,
            database_url,
        } => {
            let config = match &config {
                Some(path) => Some(load_config(path)?),
                None => None,
            };
            let url = database_url
                .or_else(|| config.as_ref().map(|c| c.database_url().to_owned()))
                .unwrap_or_else(|| tocsin_config::DEFAULT_DATABASE_URL.to_owned());
            let store = open_store(&url, config.as_ref()).await?;
            println!(
                "migrations applied to the {} database {}",
                store.backend(),
                tocsin_config::validate::redact_url(&url)
            );
            Ok(())
        }
        Command::Serve {
            config,
            listen,
            database_url,
            public_url,
        } => serve(&config, listen, database_url, public_url).await,
    }
}

fn load_config(path: &Path) -> Result<Config> {
    tocsin_config::load(path).map_err(|e| {
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

fn check_config(file: &Path) -> Result<()> {
    let config = load_config(file)?;
    println!("ok: {}: {}", file.display(), config.summary());
    Ok(())
}

async fn open_store(url: &str, config: Option<&Config>) -> Result<Box<dyn Store>> {
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

/// A new random source key: 128 bits, hex.
fn generate_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Write the config file's objects into storage, so that every node and the
/// API see the same set.
async fn provision(store: &dyn Store, config: &Config) -> Result<()> {
    fn objects<T: serde::Serialize>(
        items: &[T],
        id: impl Fn(&T) -> &str,
    ) -> Result<Vec<ProvisionedObject>> {
        items
            .iter()
            .map(|i| {
                Ok(ProvisionedObject {
                    id: id(i).to_owned(),
                    spec: serde_json::to_value(i)?,
                })
            })
            .collect()
    }
    let now = Utc::now();
    let kinds = [
        ("teams", objects(&config.teams, |t| &t.id)?),
        ("users", objects(&config.users, |u| &u.id)?),
        ("support_hours", objects(&config.support_hours, |s| &s.id)?),
        ("schedules", objects(&config.schedules, |s| &s.id)?),
        (
            "escalation_policies",
            objects(&config.escalation_policies, |p| &p.id)?,
        ),
        ("services", objects(&config.services, |s| &s.id)?),
        ("sources", objects(&config.sources, |s| &s.id)?),
        ("heartbeats", objects(&config.heartbeats, |h| &h.id)?),
        ("api_tokens", objects(&config.api_tokens, |t| &t.name)?),
    ];
    for (kind, objs) in kinds {
        let r = store
            .sync_objects(kind, &objs, now)
            .await
            .with_context(|| format!("provisioning {kind} from the config file"))?;
        if r.created + r.updated + r.removed > 0 {
            tracing::info!(
                kind,
                created = r.created,
                updated = r.updated,
                removed = r.removed,
                unchanged = r.unchanged,
                "provisioned"
            );
        }
    }
    Ok(())
}

async fn serve(
    config_path: &Path,
    listen: Option<String>,
    database_url: Option<String>,
    public_url: Option<String>,
) -> Result<()> {
    let config = load_config(config_path)?;
    let listen = listen.unwrap_or_else(|| config.listen().to_owned());
    let url = database_url.unwrap_or_else(|| config.database_url().to_owned());
    let store: Arc<dyn Store> = Arc::from(open_store(&url, Some(&config)).await?);
    provision(store.as_ref(), &config).await?;

    let mut secrets = tocsin_web::Secrets::default();
    for s in &config.sources {
        let key = store
            .source_key(&s.id, s.key.as_deref(), &generate_key(), Utc::now())
            .await
            .with_context(|| format!("loading the key of source `{}`", s.id))?;
        secrets.source_keys.insert(s.id.clone(), key);
    }
    for h in &config.heartbeats {
        let key = store
            .source_key(
                &tocsin_wire::heartbeat::source_id(&h.id),
                h.key.as_deref(),
                &generate_key(),
                Utc::now(),
            )
            .await
            .with_context(|| format!("loading the key of heartbeat `{}`", h.id))?;
        secrets.heartbeat_keys.insert(h.id.clone(), key);
    }
    for (scope, ids, map) in [
        (
            "ical-schedule",
            config
                .schedules
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>(),
            &mut secrets.schedule_feeds,
        ),
        (
            "ical-user",
            config.users.iter().map(|u| u.id.clone()).collect(),
            &mut secrets.user_feeds,
        ),
    ] {
        for id in ids {
            let token = store
                .named_secret(scope, &id, &generate_key(), Utc::now())
                .await
                .with_context(|| format!("loading the calendar feed token of {scope} `{id}`"))?;
            map.insert(id, token);
        }
    }

    secrets.link_secret = store
        .named_secret("links", "hmac", &generate_key(), Utc::now())
        .await
        .context("loading the key that signs action links")?;

    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
        format!("cannot listen on {listen}; is another process using it? Set server.listen, --listen or TOCSIN_LISTEN")
    })?;
    let addr = listener.local_addr()?;
    let public_url = public_url
        .or_else(|| config.server.public_url.clone())
        .unwrap_or_else(|| format!("http://{addr}"));
    let public_url = public_url.trim_end_matches('/');
    let channels = channels(&config, public_url)?;
    let state = tocsin_web::AppState::new(
        &config,
        store.clone(),
        &secrets,
        public_url,
        channels.clone(),
    )?;
    let metrics = state.metrics_handle();
    let escalate_now = state.escalation_wakeup();
    let escalate_wake = escalate_now.clone();
    let dispatch_now = Arc::new(tokio::sync::Notify::new());
    let app = tocsin_web::app(state);
    let keys = &secrets.source_keys;

    // The one place keys are printed: the operator needs to paste them.
    println!(
        "Tocsin {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "storage: {} {}",
        store.backend(),
        tocsin_config::validate::redact_url(&url)
    );
    for s in &config.sources {
        if let Some(key) = keys.get(&s.id) {
            match s.kind {
                tocsin_config::SourceType::Prometheus => println!(
                    "source {} ({}, grouping: {}): {public_url}/api/v1/events/prometheus/{key}",
                    s.id,
                    s.kind.as_str(),
                    match s.grouping {
                        tocsin_domain::Grouping::Group => "group",
                        tocsin_domain::Grouping::Alert => "alert",
                    }
                ),
                tocsin_config::SourceType::Pagerduty => println!(
                    "source {} (pagerduty): POST {public_url}/v2/enqueue with routing_key {key}",
                    s.id
                ),
                tocsin_config::SourceType::Opsgenie => println!(
                    "source {} (opsgenie): api_url {public_url}/ with Authorization: GenieKey {key}",
                    s.id
                ),
                tocsin_config::SourceType::Ilert => println!(
                    "source {} (ilert): POST {public_url}/api/events with integrationKey {key}",
                    s.id
                ),
            }
        }
    }
    for h in &config.heartbeats {
        if let Some(key) = secrets.heartbeat_keys.get(&h.id) {
            println!(
                "heartbeat {} (every {}, grace {}): {public_url}/api/v1/heartbeats/{key}",
                h.id, h.interval, h.grace
            );
        }
    }
    tracing::info!(%addr, storage = store.backend(), sources = config.sources.len(), "serving");
    if let Some(keep) = config.retention() {
        tokio::spawn(prune_forever(store.clone(), keep.as_chrono()));
    }
    let catalog = Arc::new(tocsin_engine::Catalog::from_config(&config));
    tokio::spawn(escalate_forever(
        tocsin_engine::EscalationWorker::new(store.clone(), catalog),
        metrics.clone(),
        escalate_now,
        dispatch_now.clone(),
    ));
    tokio::spawn(heartbeats_forever(
        tocsin_engine::HeartbeatWorker::new(store.clone(), heartbeat_specs(&config)),
        escalate_wake,
    ));
    let mut dispatcher = tocsin_engine::Dispatcher::new(store.clone(), channels, public_url);
    dispatcher.links = Some(tocsin_domain::links::LinkSigner::new(&secrets.link_secret));
    dispatcher.link_ttl = config.action_link_ttl().as_chrono();
    dispatcher.bundle_window = config.bundle_window().as_chrono();
    tokio::spawn(dispatch_forever(dispatcher, metrics.clone(), dispatch_now));

    let shutdown_grace = config
        .server
        .shutdown_timeout
        .map(|d| d.as_duration())
        .unwrap_or(Duration::from_secs(10));
    let stopping = Arc::new(tokio::sync::Notify::new());
    let notify = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        notify.notify_waiters();
    });
    tokio::select! {
        r = server => r.context("the HTTP server failed")?,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(shutdown_grace).await;
        } => {
            tracing::warn!(?shutdown_grace, "in-flight requests did not finish in time; exiting");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// How often due escalation steps are looked for: well within the 1 s promise.
const ESCALATION_POLL: Duration = Duration::from_millis(250);

/// After a wake-up, wait this long so that a burst is handled in one round
/// (one transaction) rather than one round per alert.
const WAKE_COALESCE: Duration = Duration::from_millis(20);

/// Run due escalation steps until the process ends.
async fn escalate_forever(
    worker: tocsin_engine::EscalationWorker,
    metrics: Arc<tocsin_web::Metrics>,
    wake: Arc<tokio::sync::Notify>,
    dispatch_now: Arc<tokio::sync::Notify>,
) {
    let mut every = tokio::time::interval(ESCALATION_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Every poll, and soon after ingest has created alerts.
        tokio::select! {
            _ = every.tick() => {}
            _ = wake.notified() => tokio::time::sleep(WAKE_COALESCE).await,
        }
        match worker.tick(Utc::now()).await {
            Ok(r) if r.steps > 0 => {
                if r.notifications > 0 {
                    dispatch_now.notify_one();
                }
                metrics.escalation(r.steps as u64, r.notifications as u64, r.max_lag_ms);
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

/// What the heartbeat worker needs of each configured heartbeat.
fn heartbeat_specs(config: &Config) -> Vec<tocsin_engine::HeartbeatSpec> {
    config
        .heartbeats
        .iter()
        .map(|h| tocsin_engine::HeartbeatSpec {
            id: h.id.clone(),
            name: h.name.clone().unwrap_or_else(|| h.id.clone()),
            interval: h.interval.as_chrono(),
            grace: h.grace.as_chrono(),
            policy_id: h.escalation_policy.clone(),
            service_id: h.service.clone(),
        })
        .collect()
}

/// Check heartbeats every poll (250 ms): an overdue one is noticed well
/// within a second of its due time, also right after a restart.
async fn heartbeats_forever(
    worker: tocsin_engine::HeartbeatWorker,
    escalate_now: Arc<tokio::sync::Notify>,
) {
    let mut every = tokio::time::interval(ESCALATION_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match worker.tick(Utc::now()).await {
            Ok(r) if !r.overdue.is_empty() => escalate_now.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeats: storage unavailable; retrying"),
        }
    }
}

/// The notification channels the config's providers enable.
fn channels(config: &Config, public_url: &str) -> Result<Vec<Arc<dyn tocsin_notify::Channel>>> {
    let mut out: Vec<Arc<dyn tocsin_notify::Channel>> = Vec::new();
    if let Some(smtp) = &config.providers.smtp {
        use tocsin_notify::email::{Email, SmtpSettings, Tls};
        let settings = SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port,
            from: smtp.from.clone(),
            tls: match smtp.tls {
                tocsin_config::SmtpTls::None => Tls::None,
                tocsin_config::SmtpTls::Starttls => Tls::Starttls,
                tocsin_config::SmtpTls::Tls => Tls::Tls,
            },
            username: smtp.username.clone(),
            password: smtp.password.clone(),
        };
        out.push(Arc::new(
            Email::new(&settings).map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    if let Some(ntfy) = &config.providers.ntfy {
        let channel = tocsin_notify::ntfy::Ntfy::new(&ntfy.base_url, ntfy.token.clone())
            .map_err(|e| anyhow::anyhow!("providers.ntfy: {e}"))?;
        out.push(Arc::new(channel));
    }
    if let Some(t) = &config.providers.twilio {
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
    let slack = config.providers.slack.as_ref();
    let channel = tocsin_notify::slack::Slack::new(
        slack.map_or("https://slack.com/api", |s| s.api_base.as_str()),
        slack.and_then(|s| s.bot_token.clone()),
    )
    .map_err(|e| anyhow::anyhow!("providers.slack: {e}"))?;
    out.push(Arc::new(channel));
    // Webhooks need no provider; contacts with a `secret` get signed requests.
    let secrets = config
        .users
        .iter()
        .flat_map(|u| &u.contacts)
        .filter(|c| c.kind == tocsin_config::ContactType::Webhook)
        .filter_map(|c| Some((c.url.clone()?, c.secret.clone()?)))
        .collect();
    let webhook =
        tocsin_notify::webhook::Webhook::new(secrets).map_err(|e| anyhow::anyhow!("{e}"))?;
    out.push(Arc::new(webhook));
    Ok(out)
}

/// Send due notifications until the process ends.
async fn dispatch_forever(
    dispatcher: tocsin_engine::Dispatcher,
    metrics: Arc<tocsin_web::Metrics>,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut every = tokio::time::interval(ESCALATION_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Every poll, and soon after an escalation step queued notifications.
        tokio::select! {
            _ = every.tick() => {}
            _ = wake.notified() => tokio::time::sleep(WAKE_COALESCE).await,
        }
        match dispatcher.tick(Utc::now()).await {
            Ok(r) => {
                for (channel, outcome) in &r.attempts {
                    metrics.delivery(channel, outcome);
                }
            }
            Err(e) => tracing::warn!(error = %e, "notifications: storage unavailable; retrying"),
        }
    }
}

/// Delete resolved alerts older than `keep`: a minute after start, then hourly.
async fn prune_forever(store: Arc<dyn Store>, keep: chrono::TimeDelta) {
    const BATCH: u32 = 1000;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let before = Utc::now() - keep;
        let mut total = 0u64;
        loop {
            match store.prune_resolved(before, BATCH).await {
                Ok(n) => {
                    total += n;
                    if n < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: pruning resolved alerts failed; will try again");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(deleted = total, %before, "retention: pruned resolved alerts");
        }
    }
}

async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_128_bit_hex() {
        let a = generate_key();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, generate_key());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
