//! Client commands that talk to a running server (`amtool`-style).
//!
//! Where they connect, with which token and how they print comes from the
//! flags (`--server`, `--token`, `-o`), else `TOCSIN_SERVER` /
//! `TOCSIN_TOKEN`, else the client config file
//! (`~/.config/tocsin/client.yaml`, or `--client-config` /
//! `TOCSIN_CLIENT_CONFIG`):
//!
//! ```yaml
//! server: https://tocsin.example.com
//! token_file: ~/.config/tocsin/token     # or token: tcn_…
//! output: table                          # table | wide | json
//! ```
//!
//! Exit codes: 0 ok, 1 error, 2 nothing matched (or a plan has changes),
//! 3 the server refused the token (401/403).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::Value;

/// Exit code: the command worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: something went wrong (the message says what).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: nothing matched the filters (or `apply --dry-run` has changes).
pub const EXIT_NOTHING: u8 = 2;
/// Exit code: the server refused the token (401), or the token may not do this (403).
pub const EXIT_AUTH: u8 = 3;

/// The server refused the token or the action (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// How a command prints what it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// A readable table (the default).
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// The server's JSON, as it sent it.
    Json,
}

/// `~/.config/tocsin/client.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub server: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub output: Option<Output>,
}

/// What the command line says about the connection.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub server: Option<String>,
    pub token: Option<String>,
    pub output: Option<Output>,
    pub client_config: Option<PathBuf>,
}

/// The server used when nothing names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The client config file's default place.
pub fn default_client_config() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tocsin").join("client.yaml"))
}

fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

impl ClientOptions {
    /// The client config file: the one named (which must exist), else the
    /// default one if it exists.
    fn file(&self) -> Result<ClientFile> {
        let (path, required) = match &self.client_config {
            Some(p) => (expand_home(p), true),
            None => match default_client_config() {
                Some(p) => (p, false),
                None => return Ok(ClientFile::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ClientFile::default());
            }
            Err(e) => bail!("cannot read the client config {}: {e}", path.display()),
        };
        yaml_serde::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    /// Connect as the flags, the environment and the client config say.
    pub fn connect(&self) -> Result<(Client, Output)> {
        let file = self.file()?;
        let server = self
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let token = match (&self.token, &file.token, &file.token_file) {
            (Some(t), _, _) | (None, Some(t), _) => t.trim().to_owned(),
            (None, None, Some(f)) => {
                let f = expand_home(f);
                std::fs::read_to_string(&f)
                    .map_err(|e| anyhow!("cannot read token_file {}: {e}", f.display()))?
                    .trim()
                    .to_owned()
            }
            (None, None, None) => {
                return Err(AuthError(
                    "no API token: set --token, TOCSIN_TOKEN, or token: in ~/.config/tocsin/client.yaml (`tocsin tokens create` makes one)".into(),
                )
                .into());
            }
        };
        let output = self.output.or(file.output).unwrap_or_default();
        Ok((Client::new(&server, &token)?, output))
    }
}

pub struct Client {
    server: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(server: &str, token: &str) -> Result<Client> {
        // One rustls crypto provider (ring) for the whole process; a second
        // install attempt (already installed) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            server: server.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// GET a JSON document; errors say what to fix.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let req = self.http.get(format!("{}{path}", self.server)).query(query);
        let res = self.send(req).await?;
        Ok(res.json().await.unwrap_or(Value::Null))
    }

    /// GET a text document.
    pub async fn get_text(&self, path: &str) -> Result<(String, reqwest::header::HeaderMap)> {
        let res = self
            .send(self.http.get(format!("{}{path}", self.server)))
            .await?;
        let headers = res.headers().clone();
        Ok((res.text().await.context("reading the answer")?, headers))
    }

    /// POST a JSON body; the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let req = self.http.post(format!("{}{path}", self.server)).json(body);
        let res = self.send(req).await?;
        Ok(res.json().await.unwrap_or(Value::Null))
    }

    /// DELETE; the JSON answer.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        let req = self.http.delete(format!("{}{path}", self.server));
        let res = self.send(req).await?;
        Ok(res.json().await.unwrap_or(Value::Null))
    }

    /// Send with the token; a refusal becomes an error that says what to fix
    /// (422: one line per problem with its key path; 401 and 403: an
    /// [`AuthError`]).
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let res = req.bearer_auth(&self.token).send().await.map_err(|e| {
            // The innermost cause says it best ("Connection refused").
            let mut why = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                why = c.to_string();
                cause = c.source();
            }
            anyhow!(
                "cannot reach {}: {why}; is the server running? (set --server or TOCSIN_SERVER)",
                self.server
            )
        })?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        match status.as_u16() {
            401 => Err(AuthError(format!("401: {message} (set --token or TOCSIN_TOKEN)")).into()),
            403 => Err(AuthError(format!("403: {message}")).into()),
            422 => {
                let lines: Vec<String> = body["error"]["problems"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                let path = p["path"].as_str().unwrap_or("");
                                let msg = p["message"].as_str().unwrap_or("");
                                if path.is_empty() {
                                    msg.to_owned()
                                } else {
                                    format!("{path}: {msg}")
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_else(|| vec![message.to_owned()]);
                bail!("{}", lines.join("\n"))
            }
            _ => bail!("{}: {message}", status.as_u16()),
        }
    }
}

/// What `tocsin apply` did.
pub struct Applied {
    /// The plan, one line per object (`+ create …`, `~ update … (keys)`, `- delete …`).
    pub lines: Vec<String>,
}

/// `tocsin apply FILE [--dry-run]`: check the file here (the errors of
/// `check-config`), send it with its secrets expanded from this machine's
/// environment and files, and print the server's plan. The file's name, as
/// given, is the owner of the objects it provisions.
pub async fn apply(client: &Client, file: &std::path::Path, dry_run: bool) -> Result<Applied> {
    let (config, refs) = crate::app::load_config_with_refs(file)?;
    let mut document = serde_json::to_value(&config).context("encoding the file")?;
    // Only the catalog travels: the node settings (and the TLS key) stay here.
    if let Value::Object(m) = &mut document {
        for node_only in ["server", "database", "notifications", "status_page"] {
            m.remove(node_only);
        }
    }
    let body = serde_json::json!({
        "file": file.display().to_string(),
        "document": document,
        "secret_refs": refs,
    });
    let path = if dry_run {
        "/api/v1/catalog/plan"
    } else {
        "/api/v1/catalog/apply"
    };
    let answer = client
        .post(path, &body)
        .await
        .map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
    let lines = answer["lines"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Applied { lines })
}

/// `tocsin export`: the catalog as tocsin.yaml, and the variables it made
/// up for secrets that were set through the API.
pub async fn export(client: &Client) -> Result<(String, Vec<String>)> {
    let (text, headers) = client.get_text("/api/v1/catalog/export").await?;
    let made_up = headers
        .get("x-tocsin-export-variables")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok((text, made_up))
}
