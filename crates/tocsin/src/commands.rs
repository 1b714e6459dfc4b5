//! The client commands (`tocsin alerts …`, `maintenance …`, `tokens …`,
//! `audit`, `send-test-alert`, `oncall`): each asks the server's API and
//! prints a table (`-o table`, the default), a wider one (`-o wide`) or the
//! server's JSON (`-o json`). Each returns its exit code.

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::{Value, json};

use crate::client::{Client, EXIT_ERROR, EXIT_NOTHING, EXIT_OK, Output};

/// `println!` that stops quietly when stdout was closed (`| head`).
macro_rules! say {
    () => {
        say_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        say_line(format_args!($($arg)*))
    };
}

/// Print a line; when stdout was closed, exit at once without an error.
fn say_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(i32::from(EXIT_OK));
    }
}

/// A table without borders, headers in capitals, as amtool and kubectl print.
fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    t
}

fn print_table(t: &Table) {
    // comfy-table pads each line to the table's width: trim it.
    for line in t.to_string().lines() {
        say!("{}", line.trim_end().trim_start_matches(' '));
    }
}

fn print_json(v: &Value) {
    say!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How long ago an RFC 3339 time was (`3m`, `2h`, `5d`), for tables.
fn age(v: &Value, now: DateTime<Utc>) -> String {
    let Some(t) = v
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    else {
        return "-".to_owned();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// An RFC 3339 time shortened for a table (`2026-12-01 09:00:00Z`).
fn when(v: &Value) -> String {
    match v
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        Some(t) => t
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M:%SZ")
            .to_string(),
        None => "-".to_owned(),
    }
}

fn labels_text(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Print a list the server answered (`page[field]`): the server's JSON,
/// a note on stderr when it is empty, or the table `build` makes of it.
/// Exit 2 when it is empty.
fn print_list(
    out: Output,
    page: &Value,
    field: &str,
    none: &str,
    build: impl FnOnce(&[Value]) -> Table,
) -> u8 {
    let items = page[field]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if out == Output::Json {
        print_json(page);
    } else if items.is_empty() {
        eprintln!("{none}");
    } else {
        print_table(&build(items));
    }
    if items.is_empty() {
        EXIT_NOTHING
    } else {
        EXIT_OK
    }
}

/// The query parameters of the filters that are set.
fn query<'a>(filters: &[(&'a str, &'a Option<String>)]) -> Vec<(&'a str, String)> {
    filters
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.clone())))
        .collect()
}

fn as_pairs<'a>(q: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    q.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// What `alerts list` filters by.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct AlertFilter {
    /// pending, accepted or resolved.
    #[arg(long)]
    pub status: Option<String>,
    /// A source id.
    #[arg(long)]
    pub source: Option<String>,
    /// A service id.
    #[arg(long)]
    pub service: Option<String>,
    /// SEV0 … SEV4.
    #[arg(long)]
    pub severity: Option<String>,
    /// name=value, matching the alert's labels or any of its members'
    /// (repeat for several).
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub labels: Vec<String>,
    /// At most this many (1–500, default 100).
    #[arg(long)]
    pub limit: Option<u32>,
}

/// `tocsin alerts list`: exit 2 when nothing matched.
pub async fn alerts_list(c: &Client, out: Output, f: &AlertFilter) -> Result<u8> {
    let mut q = query(&[
        ("status", &f.status),
        ("source", &f.source),
        ("service", &f.service),
        ("severity", &f.severity),
    ]);
    for l in &f.labels {
        if !l.contains('=') {
            bail!("--label `{l}`: expected name=value");
        }
        q.push(("label", l.clone()));
    }
    q.push(("limit", f.limit.unwrap_or(100).to_string()));
    let page = c.get("/api/v1/alerts", &as_pairs(&q)).await?;
    Ok(print_list(
        out,
        &page,
        "alerts",
        "no alerts match",
        |alerts| {
            let now = Utc::now();
            let wide = out == Output::Wide;
            let mut headers = vec!["id", "status", "severity", "source", "age", "summary"];
            if wide {
                headers.extend(["service", "policy", "accepted by", "labels"]);
            }
            let mut t = table(&headers);
            for a in alerts {
                let summary = a["summary"].as_str().unwrap_or_default();
                let mut row = vec![
                    text(&a["id"]),
                    text(&a["status"]),
                    text(&a["severity"]),
                    text(&a["source_id"]),
                    age(&a["created_at"], now),
                    if wide {
                        summary.to_owned()
                    } else {
                        shorten(summary, 60)
                    },
                ];
                if wide {
                    row.extend([
                        text(&a["service_id"]),
                        text(&a["policy_id"]),
                        text(&a["accepted_by"]),
                        labels_text(&a["labels"]),
                    ]);
                }
                t.add_row(row);
            }
            t
        },
    ))
}

fn alert_id(id: &str) -> Result<&str> {
    if id.parse::<i64>().is_err() {
        bail!("`{id}` is not an alert id (a number, as `tocsin alerts list` shows)");
    }
    Ok(id)
}

/// `tocsin alerts show ID`
pub async fn alerts_show(c: &Client, out: Output, id: &str) -> Result<u8> {
    let a = c
        .get(&format!("/api/v1/alerts/{}", alert_id(id)?), &[])
        .await?;
    if out == Output::Json {
        print_json(&a);
        return Ok(EXIT_OK);
    }
    let fields = [
        ("id", text(&a["id"])),
        ("summary", text(&a["summary"])),
        ("status", text(&a["status"])),
        ("severity", text(&a["severity"])),
        ("priority", text(&a["priority"])),
        ("source", text(&a["source_id"])),
        ("service", text(&a["service_id"])),
        ("policy", text(&a["policy_id"])),
        ("dedup key", text(&a["dedup_key"])),
        ("created", when(&a["created_at"])),
        (
            "accepted",
            format!("{} {}", when(&a["accepted_at"]), text(&a["accepted_by"])),
        ),
        (
            "resolved",
            format!("{} {}", when(&a["resolved_at"]), text(&a["resolved_by"])),
        ),
        ("labels", labels_text(&a["labels"])),
    ];
    for (k, v) in fields {
        say!("{:<10} {v}", format!("{k}:"));
    }
    if let Some(d) = a["details"].as_str().filter(|d| !d.is_empty()) {
        say!("details:\n  {}", d.replace('\n', "\n  "));
    }
    say!();
    let mut t = table(&["at", "actor", "channel", "kind", "message"]);
    for e in a["timeline"].as_array().into_iter().flatten() {
        t.add_row(vec![
            when(&e["at"]),
            text(&e["actor"]),
            text(&e["channel"]),
            text(&e["kind"]),
            text(&e["message"]),
        ]);
    }
    print_table(&t);
    Ok(EXIT_OK)
}

/// `tocsin alerts accept|unaccept|resolve ID…`: every id is tried; exit 1
/// when any failed (each failure on stderr).
pub async fn alerts_act(c: &Client, out: Output, action: &str, ids: &[String]) -> Result<u8> {
    let mut done = Vec::new();
    let mut failed = 0;
    for id in ids {
        let r = match alert_id(id) {
            Ok(id) => {
                c.post(&format!("/api/v1/alerts/{id}/{action}"), &Value::Null)
                    .await
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(a) => {
                if out != Output::Json {
                    say!("alert {id}: {}", text(&a["status"]));
                }
                done.push(a);
            }
            Err(e) if e.downcast_ref::<crate::client::AuthError>().is_some() && ids.len() == 1 => {
                return Err(e);
            }
            Err(e) => {
                eprintln!("alert {id}: {e:#}");
                failed += 1;
            }
        }
    }
    if out == Output::Json {
        print_json(&Value::Array(done));
    }
    Ok(if failed > 0 { EXIT_ERROR } else { EXIT_OK })
}

/// `tocsin alerts comment ID TEXT`
pub async fn alerts_comment(c: &Client, out: Output, id: &str, text_: &str) -> Result<u8> {
    let e = c
        .post(
            &format!("/api/v1/alerts/{}/comment", alert_id(id)?),
            &json!({"text": text_}),
        )
        .await?;
    if out == Output::Json {
        print_json(&e);
    } else {
        say!("alert {id}: comment added by {}", text(&e["actor"]));
    }
    Ok(EXIT_OK)
}

/// `tocsin oncall [SCHEDULE] [--at T]`
pub async fn oncall(
    c: &Client,
    out: Output,
    schedule: Option<&str>,
    at: Option<&str>,
) -> Result<u8> {
    let ids: Vec<String> = match schedule {
        Some(s) => vec![s.to_owned()],
        None => c.get("/api/v1/schedules", &[]).await?["schedules"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if ids.is_empty() {
        eprintln!("no schedules are configured");
        return Ok(EXIT_NOTHING);
    }
    let mut answers = Vec::new();
    for id in &ids {
        let query: Vec<(&str, &str)> = at.map(|t| vec![("at", t)]).unwrap_or_default();
        let v = c
            .get(&format!("/api/v1/schedules/{id}/oncall"), &query)
            .await
            .map_err(|e| anyhow!("asking who is on call in `{id}`: {e:#}"))?;
        answers.push((id.clone(), v));
    }
    if out == Output::Json {
        print_json(&Value::Array(answers.into_iter().map(|(_, v)| v).collect()));
        return Ok(EXIT_OK);
    }
    let wide = out == Output::Wide;
    let mut headers = vec!["schedule", "on call", "name", "from"];
    if wide {
        headers.extend(["at", "until"]);
    }
    let mut t = table(&headers);
    for (id, v) in &answers {
        let o = &v["on_call"];
        let mut row = vec![
            id.clone(),
            o["user"].as_str().unwrap_or("nobody").to_owned(),
            text(&o["name"]),
            text(&o["source_name"]),
        ];
        if wide {
            row.extend([when(&v["at"]), when(&o["until"])]);
        }
        t.add_row(row);
    }
    print_table(&t);
    if !wide && let Some((_, v)) = answers.first() {
        say!("(at {})", when(&v["at"]));
    }
    Ok(EXIT_OK)
}

/// `tocsin send-test-alert`: through `source`, or the only source there is.
pub async fn send_test_alert(
    c: &Client,
    out: Output,
    source: Option<&str>,
    severity: Option<&str>,
    labels: &[String],
) -> Result<u8> {
    let source = match source {
        Some(s) => s.to_owned(),
        None => {
            let list = c.get("/api/v1/sources", &[]).await?;
            let ids: Vec<String> = list["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
            match ids.as_slice() {
                [one] => one.clone(),
                [] => bail!("there are no sources to send a test alert through"),
                many => bail!(
                    "there are {} sources ({}); pick one with --source",
                    many.len(),
                    many.join(", ")
                ),
            }
        }
    };
    let mut map = serde_json::Map::new();
    for l in labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| anyhow!("--label `{l}`: expected name=value"))?;
        map.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    let mut body = json!({"labels": map});
    if let Some(s) = severity {
        body["severity"] = Value::String(s.to_uppercase());
    }
    let v = c
        .post(&format!("/api/v1/sources/{source}/test-alert"), &body)
        .await?;
    if out == Output::Json {
        print_json(&v);
        return Ok(EXIT_OK);
    }
    let a = &v["alert"];
    say!(
        "alert {} ({}, {}) made through source {source}: {}",
        text(&a["id"]),
        text(&a["status"]),
        text(&a["severity"]),
        text(&a["summary"])
    );
    say!(
        "routed to policy {}; follow it with: tocsin alerts show {}",
        text(&a["policy_id"]),
        text(&a["id"])
    );
    Ok(EXIT_OK)
}

/// `tocsin maintenance start`
pub async fn maintenance_start(
    c: &Client,
    out: Output,
    target: (&str, &str),
    duration: &str,
    reason: Option<&str>,
) -> Result<u8> {
    let mut body = json!({"duration": duration});
    body[target.0] = Value::String(target.1.to_owned());
    if let Some(r) = reason {
        body["reason"] = Value::String(r.to_owned());
    }
    let w = c.post("/api/v1/maintenance", &body).await?;
    if out == Output::Json {
        print_json(&w);
    } else {
        say!(
            "maintenance window {} on {} {} until {}: alerts are stored, nobody is paged",
            text(&w["id"]),
            target.0,
            target.1,
            when(&w["ends_at"])
        );
    }
    Ok(EXIT_OK)
}

/// `tocsin maintenance list`
pub async fn maintenance_list(c: &Client, out: Output) -> Result<u8> {
    let v = c.get("/api/v1/maintenance", &[]).await?;
    let none = "no maintenance windows are active or upcoming";
    Ok(print_list(out, &v, "windows", none, |windows| {
        let mut t = table(&["id", "target", "active", "starts", "ends", "reason", "by"]);
        for w in windows {
            t.add_row(vec![
                text(&w["id"]),
                format!("{} {}", text(&w["target_kind"]), text(&w["target_id"])),
                if w["active"] == true { "yes" } else { "no" }.to_owned(),
                when(&w["starts_at"]),
                when(&w["ends_at"]),
                text(&w["reason"]),
                text(&w["created_by"]),
            ]);
        }
        t
    }))
}

/// `tocsin maintenance end ID`
pub async fn maintenance_end(c: &Client, out: Output, id: &str) -> Result<u8> {
    let w = c
        .post(&format!("/api/v1/maintenance/{id}/end"), &Value::Null)
        .await?;
    if out == Output::Json {
        print_json(&w);
    } else {
        say!("maintenance window {id} ended at {}", when(&w["ended_at"]));
    }
    Ok(EXIT_OK)
}

/// `tocsin tokens create NAME`: the secret on stdout (alone with `-o table`,
/// so that `$(tocsin tokens create laptop)` captures it).
pub async fn tokens_create(
    c: &Client,
    out: Output,
    name: &str,
    role: Option<&str>,
    user: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<u8> {
    let mut body = json!({"name": name});
    if let Some(r) = role {
        body["role"] = Value::String(r.to_owned());
    }
    if let Some(u) = user {
        body["user"] = Value::String(u.to_owned());
    }
    if let Some(t) = expires_at {
        body["expires_at"] = Value::String(t.to_rfc3339());
    }
    let t = c.post("/api/v1/tokens", &body).await?;
    match out {
        Output::Json => print_json(&t),
        _ => {
            say!("{}", text(&t["token"]));
            eprintln!(
                "token {} ({}) for user {}, role {}{}: shown this once, store it now",
                text(&t["id"]),
                text(&t["name"]),
                text(&t["user"]),
                text(&t["role"]),
                match t["expires_at"].as_str() {
                    Some(_) => format!(", expires {}", when(&t["expires_at"])),
                    None => String::new(),
                }
            );
        }
    }
    Ok(EXIT_OK)
}

/// `tocsin tokens list`
pub async fn tokens_list(c: &Client, out: Output, user: Option<&str>) -> Result<u8> {
    let query: Vec<(&str, &str)> = user.map(|u| vec![("user", u)]).unwrap_or_default();
    let v = c.get("/api/v1/tokens", &query).await?;
    Ok(print_list(out, &v, "tokens", "no tokens", |tokens| {
        let wide = out == Output::Wide;
        let mut headers = vec![
            "id",
            "name",
            "role",
            "user",
            "created",
            "last used",
            "expires",
        ];
        if wide {
            headers.push("created by");
        }
        let mut t = table(&headers);
        for k in tokens {
            let mut row = vec![
                text(&k["id"]),
                text(&k["name"]),
                text(&k["role"]),
                text(&k["user"]),
                when(&k["created_at"]),
                when(&k["last_used_at"]),
                when(&k["expires_at"]),
            ];
            if wide {
                row.push(text(&k["created_by"]));
            }
            t.add_row(row);
        }
        t
    }))
}

/// `tocsin tokens revoke ID`
pub async fn tokens_revoke(c: &Client, out: Output, id: &str) -> Result<u8> {
    let t = c.delete(&format!("/api/v1/tokens/{id}")).await?;
    if out == Output::Json {
        print_json(&t);
    } else {
        say!(
            "token {id} ({}) revoked; it stops working at once on every node",
            text(&t["name"])
        );
    }
    Ok(EXIT_OK)
}

/// What `tocsin audit` filters by.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct AuditFilter {
    /// `user:ID`, `token:NAME`, `config:FILE`, `source:ID`.
    #[arg(long)]
    pub actor: Option<String>,
    /// alert, maintenance, token, or a catalog kind (sources, users, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// An object id (an alert's number, a source's id, …).
    #[arg(long)]
    pub object: Option<String>,
    /// From this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many (1–1000, default 50).
    #[arg(long)]
    pub limit: Option<u32>,
}

/// `tocsin audit`: exit 2 when nothing matched.
pub async fn audit(c: &Client, out: Output, f: &AuditFilter) -> Result<u8> {
    let mut q = query(&[
        ("actor", &f.actor),
        ("kind", &f.kind),
        ("object", &f.object),
        ("since", &f.since),
        ("until", &f.until),
    ]);
    q.push(("limit", f.limit.unwrap_or(50).to_string()));
    let page = c.get("/api/v1/audit", &as_pairs(&q)).await?;
    Ok(print_list(
        out,
        &page,
        "entries",
        "no audit entries match",
        |entries| {
            let wide = out == Output::Wide;
            let mut headers = vec!["at", "actor", "action", "kind", "object"];
            if wide {
                headers.extend(["channel", "diff"]);
            } else {
                headers.push("changed");
            }
            let mut t = table(&headers);
            for e in entries {
                let mut row = vec![
                    when(&e["at"]),
                    text(&e["actor"]),
                    text(&e["action"]),
                    text(&e["kind"]),
                    text(&e["object_id"]),
                ];
                if wide {
                    row.extend([text(&e["channel"]), e["diff"].to_string()]);
                } else {
                    let keys: Vec<String> = e["diff"]
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    row.push(shorten(&keys.join(","), 50));
                }
                t.add_row(row);
            }
            t
        },
    ))
}

/// One incident in a line.
fn incident_line(i: &Value) -> String {
    let services: Vec<String> = i["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| format!("{} ({})", text(&s["id"]), text(&s["impact"])))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "incident {} [{} {}] {}{}",
        text(&i["id"]),
        text(&i["severity"]),
        text(&i["status"]),
        text(&i["title"]),
        if services.is_empty() {
            String::new()
        } else {
            format!(" — {}", services.join(", "))
        }
    )
}

/// `tocsin incidents open`
pub async fn incident_open(c: &Client, out: Output, body: &Value) -> Result<u8> {
    let i = c.post("/api/v1/incidents", body).await?;
    if out == Output::Json {
        print_json(&i);
    } else {
        say!("opened {}", incident_line(&i));
    }
    Ok(EXIT_OK)
}

/// `tocsin incidents list`
pub async fn incidents_list(c: &Client, out: Output, all: bool) -> Result<u8> {
    let query: &[(&str, &str)] = if all { &[] } else { &[("status", "open")] };
    let v = c.get("/api/v1/incidents", query).await?;
    let none = if all {
        "no incidents"
    } else {
        "no open incidents"
    };
    Ok(print_list(out, &v, "incidents", none, |incidents| {
        let mut t = table(&[
            "id", "severity", "status", "title", "services", "alerts", "opened",
        ]);
        for i in incidents {
            t.add_row(vec![
                text(&i["id"]),
                text(&i["severity"]),
                text(&i["status"]),
                text(&i["title"]),
                i["services"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| text(&s["id"]))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                i["alert_ids"].as_array().map_or(0, Vec::len).to_string(),
                when(&i["opened_at"]),
            ]);
        }
        t
    }))
}

/// `tocsin incidents show`
pub async fn incident_show(c: &Client, out: Output, id: &str) -> Result<u8> {
    let i = c.get(&format!("/api/v1/incidents/{id}"), &[]).await?;
    if out == Output::Json {
        print_json(&i);
        return Ok(EXIT_OK);
    }
    say!("{}", incident_line(&i));
    for e in i["timeline"].as_array().into_iter().flatten() {
        say!(
            "  {} {}{}: {} — {}",
            when(&e["at"]),
            text(&e["kind"]),
            if e["public"] == true { " (public)" } else { "" },
            text(&e["message"]),
            text(&e["actor"])
        );
    }
    Ok(EXIT_OK)
}

/// `tocsin incidents update|resolve`
pub async fn incident_post(
    c: &Client,
    out: Output,
    id: &str,
    what: &str,
    body: &Value,
) -> Result<u8> {
    let i = c
        .post(&format!("/api/v1/incidents/{id}/{what}"), body)
        .await?;
    if out == Output::Json {
        print_json(&i);
    } else {
        say!("{}", incident_line(&i));
    }
    Ok(EXIT_OK)
}

/// `tocsin incidents report`: the Markdown, on stdout.
pub async fn incident_report(c: &Client, id: &str) -> Result<u8> {
    let (text, _) = c
        .get_text(&format!("/api/v1/incidents/{id}/report"))
        .await?;
    print!("{text}");
    Ok(EXIT_OK)
}
