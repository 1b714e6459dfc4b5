//! The `tocsin` binary: command line, configuration and start-up. All the
//! work happens in the library crates.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use tocsin::app::{self, ServeOptions};
use tocsin::client;

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
        /// The server's base URL.
        #[arg(long, env = "TOCSIN_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// An API token from api_tokens (any role).
        #[arg(long, env = "TOCSIN_TOKEN", hide_env_values = true)]
        token: String,
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
        /// The server's base URL.
        #[arg(long, env = "TOCSIN_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// An admin API token.
        #[arg(long, env = "TOCSIN_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Print a running server's catalog as tocsin.yaml. Secrets are
    /// written as the `${ENV}` or `*_file` references they came from (or a
    /// `${TOCSIN_…}` variable, listed on stderr, for ones set through the
    /// API), never in clear.
    Export {
        /// The server's base URL.
        #[arg(long, env = "TOCSIN_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// An API token (any role).
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
        Ok(code) => code,
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

async fn run(command: Command) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match command {
        Command::Apply {
            file,
            dry_run,
            server,
            token,
        } => {
            let c = client::Client::new(&server, &token)?;
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
        Command::Export { server, token } => {
            let c = client::Client::new(&server, &token)?;
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
            server,
            token,
        } => {
            let c = client::Client::new(&server, &token)?;
            println!(
                "{}",
                client::oncall(&c, schedule.as_deref(), at.as_deref()).await?
            );
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
