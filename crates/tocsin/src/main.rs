//! The `tocsin` binary: command line, configuration and start-up. All the
//! work happens in the library crates.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tocsin::app::{self, ServeOptions};
use tocsin::{client, commands};

/// mimalloc instead of the system allocator: under ingest load, glibc's
/// malloc and free were about a fifth of the server's CPU (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
  export TOCSIN_SERVER=http://127.0.0.1:8080 TOCSIN_TOKEN=...
  tocsin alerts list --status pending          # open alerts, newest first
  tocsin oncall                                # who is on call now, per schedule
  tocsin send-test-alert --source prometheus   # page through a source, end to end

Client commands read --server/--token/-o from flags, TOCSIN_SERVER and
TOCSIN_TOKEN, or ~/.config/tocsin/client.yaml (server:, token: or
token_file:, output:). Exit codes: 0 ok, 1 error, 2 nothing matched (or
apply --dry-run has changes), 3 the server refused the token.

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

/// Where a client command connects and how it prints.
#[derive(Args, Clone, Debug)]
struct ClientArgs {
    /// The server's base URL [default: server: in the client config, else
    /// http://127.0.0.1:8080].
    #[arg(long, env = "TOCSIN_SERVER", global = true)]
    server: Option<String>,
    /// An API token (one from api_tokens, or `tocsin tokens create`)
    /// [default: token: or token_file: in the client config].
    #[arg(long, env = "TOCSIN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Output: a table, a wider table, or the server's JSON [default:
    /// output: in the client config, else table].
    #[arg(long, short = 'o', value_enum, global = true)]
    output: Option<client::Output>,
    /// The client config file [default: ~/.config/tocsin/client.yaml].
    #[arg(long, env = "TOCSIN_CLIENT_CONFIG", global = true)]
    client_config: Option<PathBuf>,
}

impl ClientArgs {
    fn connect(&self) -> Result<(client::Client, client::Output)> {
        client::ClientOptions {
            server: self.server.clone(),
            token: self.token.clone(),
            output: self.output,
            client_config: self.client_config.clone(),
        }
        .connect()
    }
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Alerts, newest first (exit 2 when none match).
    List {
        #[command(flatten)]
        filter: commands::AlertFilter,
    },
    /// One alert with its timeline.
    Show { id: String },
    /// Accept alerts: their escalation stops.
    Accept {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Un-accept alerts: back to pending, escalation restarts at level 1.
    Unaccept {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Resolve alerts.
    Resolve {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Add a comment to an alert's timeline.
    Comment { id: String, text: String },
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Start a window now: alerts of the source or service are stored and
    /// shown, but nobody is paged.
    Start {
        /// A service id.
        #[arg(long, conflicts_with = "source", required_unless_present = "source")]
        service: Option<String>,
        /// A source id (or heartbeat:ID).
        #[arg(long)]
        source: Option<String>,
        /// How long (30m, 2h, 1d).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why, for the timeline and the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Active and upcoming windows (exit 2 when there are none).
    List,
    /// End a window now.
    End { id: String },
}

#[derive(Subcommand)]
enum IncidentsCommand {
    /// Open an incident (it shows on the status page when it affects a
    /// public service and its first update is --public).
    Open {
        /// What users see: "Checkout is slow".
        title: String,
        /// SEV0 … SEV4.
        #[arg(long, default_value = "SEV2")]
        severity: String,
        /// An affected service as ID or ID=IMPACT (degraded,
        /// partial_outage, major_outage; default degraded). Repeat for several.
        #[arg(long = "service", value_name = "ID[=IMPACT]")]
        services: Vec<String>,
        /// The first update [default: Investigating.].
        #[arg(long)]
        message: Option<String>,
        /// Show the first update on the status page and tell subscribers.
        #[arg(long)]
        public: bool,
        /// Alerts to link (repeat for several).
        #[arg(long = "alert", value_name = "ID")]
        alerts: Vec<i64>,
    },
    /// Incidents, newest first (exit 2 when there are none).
    List {
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
    },
    /// One incident with its updates and timeline.
    Show { id: String },
    /// Post an update; --status moves it on (identified, monitoring, resolved).
    Update {
        id: String,
        message: String,
        /// Show it on the status page and tell subscribers.
        #[arg(long)]
        public: bool,
        #[arg(long)]
        status: Option<String>,
    },
    /// Resolve an incident.
    Resolve {
        id: String,
        #[arg(long)]
        message: Option<String>,
    },
    /// Print the incident as a Markdown report (the start of a postmortem).
    Report { id: String },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Make a personal API token; prints the secret once, on stdout.
    Create {
        /// What it is for (laptop, ci, grafana).
        name: String,
        /// admin, responder or observer; at most yours and the user's
        /// [default: the highest allowed].
        #[arg(long)]
        role: Option<String>,
        /// The user it acts as (admins only) [default: your user].
        #[arg(long)]
        user: Option<String>,
        /// It stops working after this long (30d, 12h).
        #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// It stops working at this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// Your tokens (an admin's: everybody's, or --user's); exit 2 when none.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token: it stops working at once on every node.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: apply migrations, provision the config file's objects
    /// into storage, print each source's and heartbeat's URL and serve until
    /// SIGTERM/SIGINT. SIGHUP re-reads the file and provisions it again (a
    /// file with an error changes nothing).
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
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Alerts: list, show, accept, unaccept, resolve, comment.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send a test alert through a source's own ingest path (its format,
    /// routing, maintenance and paging, as a real one) and print the alert.
    SendTestAlert {
        /// The source [default: the only one there is].
        #[arg(long)]
        source: Option<String>,
        /// SEV0 … SEV4 [default: what the source makes of a plain event].
        #[arg(long)]
        severity: Option<String>,
        /// name=value labels to add (repeat for several).
        #[arg(long = "label", value_name = "NAME=VALUE")]
        labels: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Maintenance windows: start, list, end.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Incidents: open, list, show, update, resolve, report.
    Incidents {
        #[command(subcommand)]
        command: IncidentsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Personal API tokens: create, list, revoke.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The audit log, newest first (exit 2 when nothing matches).
    Audit {
        #[command(flatten)]
        filter: commands::AuditFilter,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a shell completion script: `tocsin completions bash >
    /// /etc/bash_completion.d/tocsin`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Provision a config file into a running server's catalog: print the
    /// plan (`+ create`, `~ update` with the changed keys, `- delete`) and
    /// apply it in one transaction. The file owns what it provisions, by
    /// the name given here: its deletes touch only objects from that file.
    /// Exits 0 when applied, 1 on an error (nothing is applied).
    Apply {
        /// The tocsin.yaml to apply; `${ENV}` and `*_file` secrets are read
        /// on this machine.
        file: PathBuf,
        /// Print the plan only; exit 2 when it has changes, 0 when none.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a running server's catalog as tocsin.yaml. Secrets are
    /// written as the `${ENV}` or `*_file` references they came from (or a
    /// `${TOCSIN_…}` variable, listed on stderr, for ones set through the
    /// API), never in clear.
    Export {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Apply database migrations and exit (serve also does this at start).
    /// Web UI accounts: `set-password USER` (run on the server; reads the
    /// password from stdin).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    Migrate {
        /// Take database.url from this config file.
        #[arg(long, short, env = "TOCSIN_CONFIG")]
        config: Option<PathBuf>,
        /// Database URL; overrides the config file.
        #[arg(long, env = "TOCSIN_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set USER's web UI password, read from stdin (one line), on this
    /// server's storage. Their other sessions end. Example:
    /// `printf '%s\n' "$PW" | tocsin users set-password alice --config tocsin.yaml`
    SetPassword {
        /// The user's id in the catalog.
        user: String,
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
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let auth = e.downcast_ref::<client::AuthError>().is_some();
            std::process::ExitCode::from(if auth {
                client::EXIT_AUTH
            } else {
                client::EXIT_ERROR
            })
        }
    }
}

/// A client command's result as the process's exit code.
fn code(r: Result<u8>) -> Result<std::process::ExitCode> {
    r.map(std::process::ExitCode::from)
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

async fn run(command: Command) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match command {
        Command::Apply {
            file,
            dry_run,
            client,
        } => {
            let (c, _) = client.connect()?;
            let applied = client::apply(&c, &file, dry_run).await?;
            if applied.lines.is_empty() {
                println!("{}: no changes", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            for line in &applied.lines {
                println!("{line}");
            }
            let n = applied.lines.len();
            let s = if n == 1 { "" } else { "s" };
            if dry_run {
                println!("{n} change{s} planned (dry run: nothing applied)");
                Ok(ExitCode::from(2))
            } else {
                println!("{n} change{s} applied");
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Export { client } => {
            let (c, _) = client.connect()?;
            let (text, made_up) = client::export(&c).await?;
            print!("{text}");
            if !made_up.is_empty() {
                eprintln!(
                    "note: secrets set through the API are written as variables; set them before applying this file: {}",
                    made_up.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => app::check_config(&file).map(|()| ExitCode::SUCCESS),
        Command::Oncall {
            schedule,
            at,
            client,
        } => {
            let (c, out) = client.connect()?;
            code(commands::oncall(&c, out, schedule.as_deref(), at.as_deref()).await)
        }
        Command::Alerts { command, client } => {
            let (c, out) = client.connect()?;
            code(match command {
                AlertsCommand::List { filter } => commands::alerts_list(&c, out, &filter).await,
                AlertsCommand::Show { id } => commands::alerts_show(&c, out, &id).await,
                AlertsCommand::Accept { ids } => {
                    commands::alerts_act(&c, out, "accept", &ids).await
                }
                AlertsCommand::Unaccept { ids } => {
                    commands::alerts_act(&c, out, "unaccept", &ids).await
                }
                AlertsCommand::Resolve { ids } => {
                    commands::alerts_act(&c, out, "resolve", &ids).await
                }
                AlertsCommand::Comment { id, text } => {
                    commands::alerts_comment(&c, out, &id, &text).await
                }
            })
        }
        Command::SendTestAlert {
            source,
            severity,
            labels,
            client,
        } => {
            let (c, out) = client.connect()?;
            code(
                commands::send_test_alert(&c, out, source.as_deref(), severity.as_deref(), &labels)
                    .await,
            )
        }
        Command::Maintenance { command, client } => {
            let (c, out) = client.connect()?;
            code(match command {
                MaintenanceCommand::Start {
                    service,
                    source,
                    duration,
                    reason,
                } => {
                    let target = match (&service, &source) {
                        (Some(s), _) => ("service", s.as_str()),
                        (None, Some(s)) => ("source", s.as_str()),
                        (None, None) => anyhow::bail!("name --service or --source"),
                    };
                    commands::maintenance_start(&c, out, target, &duration, reason.as_deref()).await
                }
                MaintenanceCommand::List => commands::maintenance_list(&c, out).await,
                MaintenanceCommand::End { id } => commands::maintenance_end(&c, out, &id).await,
            })
        }
        Command::Incidents { command, client } => {
            let (c, out) = client.connect()?;
            code(match command {
                IncidentsCommand::Open {
                    title,
                    severity,
                    services,
                    message,
                    public,
                    alerts,
                } => {
                    let services = services
                        .iter()
                        .map(|s| match s.split_once('=') {
                            Some((id, impact)) => serde_json::json!({"id": id, "impact": impact}),
                            None => serde_json::json!({"id": s, "impact": "degraded"}),
                        })
                        .collect();
                    let mut body = serde_json::json!({"title": title, "severity": severity, "services": serde_json::Value::Array(services), "public": public, "alert_ids": alerts});
                    if let Some(m) = message {
                        body["message"] = m.into();
                    }
                    commands::incident_open(&c, out, &body).await
                }
                IncidentsCommand::List { all } => commands::incidents_list(&c, out, all).await,
                IncidentsCommand::Show { id } => commands::incident_show(&c, out, &id).await,
                IncidentsCommand::Update {
                    id,
                    message,
                    public,
                    status,
                } => {
                    let mut body = serde_json::json!({"message": message, "public": public});
                    if let Some(s) = status {
                        body["status"] = s.into();
                    }
                    commands::incident_post(&c, out, &id, "updates", &body).await
                }
                IncidentsCommand::Resolve { id, message } => {
                    let body = match message {
                        Some(m) => serde_json::json!({"message": m}),
                        None => serde_json::json!({}),
                    };
                    commands::incident_post(&c, out, &id, "resolve", &body).await
                }
                IncidentsCommand::Report { id } => commands::incident_report(&c, &id).await,
            })
        }
        Command::Tokens { command, client } => {
            let (c, out) = client.connect()?;
            code(match command {
                TokensCommand::Create {
                    name,
                    role,
                    user,
                    expires_in,
                    expires_at,
                } => {
                    let expires_at = match (expires_in, expires_at) {
                        (Some(d), _) => {
                            let d: tocsin_domain::DurationSpec = d
                                .parse()
                                .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
                            Some(chrono::Utc::now() + d.as_chrono())
                        }
                        (None, Some(t)) => Some(
                            chrono::DateTime::parse_from_rfc3339(&t)
                                .map_err(|e| {
                                    anyhow::anyhow!(
                                        "--expires-at `{t}`: {e}; expected RFC 3339 such as 2027-01-01T00:00:00Z"
                                    )
                                })?
                                .with_timezone(&chrono::Utc),
                        ),
                        (None, None) => None,
                    };
                    commands::tokens_create(
                        &c,
                        out,
                        &name,
                        role.as_deref(),
                        user.as_deref(),
                        expires_at,
                    )
                    .await
                }
                TokensCommand::List { user } => {
                    commands::tokens_list(&c, out, user.as_deref()).await
                }
                TokensCommand::Revoke { id } => commands::tokens_revoke(&c, out, &id).await,
            })
        }
        Command::Audit { filter, client } => {
            let (c, out) = client.connect()?;
            code(commands::audit(&c, out, &filter).await)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tocsin", &mut script);
            use std::io::Write;
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::anyhow!("writing the completion script: {e}"))
                }
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Command::Users {
            command:
                UsersCommand::SetPassword {
                    user,
                    config,
                    database_url,
                },
        } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| anyhow::anyhow!("reading the password from stdin: {e}"))?;
            let password = line.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                anyhow::bail!(
                    "no password on stdin; pipe it in, e.g. printf '%s\\n' \"$PW\" | tocsin users set-password {user}"
                );
            }
            app::set_password(config.as_deref(), database_url, &user, password).await?;
            println!("password set for {user}; their other sessions were ended");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate {
            config,
            database_url,
        } => {
            let config = match &config {
                Some(path) => Some(app::load_config(path)?),
                None => None,
            };
            let url = database_url
                .or_else(|| config.as_ref().map(|c| c.database_url().to_owned()))
                .unwrap_or_else(|| tocsin_config::DEFAULT_DATABASE_URL.to_owned());
            let store = app::open_store(&url, config.as_ref()).await?;
            println!(
                "migrations applied to the {} database {}",
                store.backend(),
                tocsin_config::validate::redact_url(&url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            config,
            listen,
            database_url,
            public_url,
        } => app::serve(&ServeOptions {
            config,
            listen,
            database_url,
            public_url,
        })
        .await
        .map(|()| ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_128_bit_hex() {
        let a = app::generate_key();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, app::generate_key());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
