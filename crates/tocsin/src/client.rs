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
        let url = format!("{}{path}", self.server);
        let res = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach the Tocsin server at {} ({e}); set --server or TOCSIN_SERVER",
                    self.server
                )
            })?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        match status.as_u16() {
            401 => bail!(
                "the server refused the token ({message}); set --token or TOCSIN_TOKEN to a token from api_tokens"
            ),
            403 => bail!("the token may not do this: {message}"),
            _ => bail!("{status}: {message}"),
        }
    }
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
