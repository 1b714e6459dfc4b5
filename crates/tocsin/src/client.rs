//! Client commands that talk to a running server (`amtool`-style):
//! `--server` / `TOCSIN_SERVER` and `--token` / `TOCSIN_TOKEN`.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

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

    /// Send with the token; a refusal becomes an error that says what to fix
    /// (422: one line per problem with its key path).
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let res = req.bearer_auth(&self.token).send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Tocsin server at {} ({e}); set --server or TOCSIN_SERVER",
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
            401 => bail!(
                "the server refused the token ({message}); set --token or TOCSIN_TOKEN to a token from api_tokens"
            ),
            403 => bail!("the token may not do this: {message}"),
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
            _ => bail!("{status}: {message}"),
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

fn describe(schedule: &str, v: &Value) -> String {
    match v.get("user").and_then(Value::as_str) {
        Some(user) => format!(
            "{schedule}: {} ({user}), from {}",
            v["name"].as_str().unwrap_or(user),
            v["source_name"].as_str().unwrap_or("?")
        ),
        None => format!("{schedule}: nobody on call"),
    }
}

/// `tocsin oncall [SCHEDULE] [--at T]`
pub async fn oncall(client: &Client, schedule: Option<&str>, at: Option<&str>) -> Result<String> {
    let mut lines = Vec::new();
    let ids: Vec<String> = match schedule {
        Some(s) => vec![s.to_owned()],
        None => {
            let list = client.get("/api/v1/schedules", &[]).await?;
            list["schedules"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    if ids.is_empty() {
        return Ok("no schedules are configured".to_owned());
    }
    let mut when = None;
    for id in ids {
        let query: Vec<(&str, &str)> = at.map(|t| vec![("at", t)]).unwrap_or_default();
        let v = client
            .get(&format!("/api/v1/schedules/{id}/oncall"), &query)
            .await
            .with_context(|| format!("asking who is on call in `{id}`"))?;
        when.get_or_insert_with(|| v["at"].as_str().unwrap_or("").to_owned());
        lines.push(describe(&id, &v["on_call"]));
    }
    if let Some(w) = when {
        lines.push(format!("(at {w})"));
    }
    Ok(lines.join("\n"))
}
