//! The client commands against a real `tocsin serve`: `alerts
//! list|show|accept|unaccept|resolve|comment`, `send-test-alert`,
//! `maintenance start|list|end`, `tokens create|list|revoke`, `audit` and
//! `completions`, in each output format (`-o table|wide|json`), with each
//! exit code (0 ok, 1 error, 2 nothing matched, 3 the token refused), and
//! the connection taken from flags, the environment or the client config.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::Value;

const ADMIN: &str = "cli-admin-token-0123456789";
const ALICE: &str = "cli-alice-token-0123456789";
const OLGA: &str = "cli-olga-token-01234567890";
const PROM_KEY: &str = "cli-prom-key-0123456789ab";

fn config(db: &str, port: u16) -> String {
    format!(
        r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "{db}"}}
api_tokens:
  - {{name: root, token: {ADMIN}, role: admin}}
  - {{name: alice-cli, token: {ALICE}, role: responder, user: alice}}
  - {{name: olga-cli, token: {OLGA}, role: observer, user: olga}}
teams: [{{id: sre}}]
users:
  - {{id: alice, name: Alice Example, teams: [sre]}}
  - {{id: olga, teams: [sre], role: observer}}
escalation_policies:
  - {{id: sre-pager, team: sre, levels: [{{notify: ["user:alice"], escalate_after: 5m}}]}}
services:
  - {{id: checkout, team: sre, escalation_policy: sre-pager}}
sources:
  - {{id: prom, type: prometheus, team: sre, key: {PROM_KEY}, escalation_policy: sre-pager, service: checkout}}
  - {{id: events, type: pagerduty, team: sre, escalation_policy: sre-pager}}
schedules:
  - id: rota
    timezone: Europe/Berlin
    layers:
      - {{users: [alice], rotation: 1w, handoff: "2026-01-05T09:00"}}
"#
    )
}

struct Server {
    base: String,
    proc: Proc,
    dir: std::path::PathBuf,
}

impl Server {
    async fn start(name: &str) -> Server {
        let dir = scratch(name);
        let port = free_port();
        let db = format!("sqlite://{}", dir.join("t.db").display());
        let cfg = dir.join("tocsin.yaml");
        std::fs::write(&cfg, config(&db, port)).unwrap();
        let proc = serve(&dir, &cfg, 0);
        let base = format!("http://127.0.0.1:{port}");
        wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
        Server { base, proc, dir }
    }

    /// `tocsin ARGS` with TOCSIN_SERVER and TOCSIN_TOKEN set, and no client
    /// config file of the machine's user.
    fn run(&self, token: &str, args: &[&str]) -> Out {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tocsin"));
        c.args(args)
            .env("TOCSIN_SERVER", &self.base)
            .env("TOCSIN_TOKEN", token)
            .env("XDG_CONFIG_HOME", self.dir.join("no-config"))
            .env_remove("TOCSIN_CLIENT_CONFIG");
        Out(c.output().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.proc.terminate();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Out(Output);

impl Out {
    fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
    /// Exit 0, or panic with what it printed.
    fn ok(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// The rows of a table (header first), each split on runs of 2+ spaces.
    fn rows(&self) -> Vec<Vec<String>> {
        self.stdout()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }
}

fn test_alert(s: &Server, args: &[&str]) -> i64 {
    let mut all = vec!["send-test-alert", "-o", "json"];
    all.extend_from_slice(args);
    s.run(ADMIN, &all).ok().json()["alert"]["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn alerts_and_test_alerts_in_every_format_and_exit_code() {
    let s = Server::start("cli-alerts").await;

    // send-test-alert: through each source's own format; the table form
    // names the alert, the JSON form is the server's answer.
    let out = s
        .run(
            ADMIN,
            &[
                "send-test-alert",
                "--source",
                "prom",
                "--severity",
                "sev1",
                "--label",
                "team=sre",
            ],
        )
        .ok();
    let line = out.stdout();
    assert!(line.starts_with("alert "), "{line}");
    assert!(
        line.contains("(pending, SEV1) made through source prom"),
        "{line}"
    );
    let prom: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let pd = test_alert(&s, &["--source", "events", "--severity", "SEV0"]);
    let shown = s
        .run(ADMIN, &["alerts", "show", &pd.to_string(), "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["severity"], "SEV0");
    assert_eq!(shown["source_id"], "events");
    assert!(
        shown["timeline"][0]["channel"]
            .as_str()
            .unwrap()
            .contains("test alert (pagerduty)"),
        "{shown}"
    );
    // Its first level ran: alice was notified (no provider, so it failed).
    assert!(
        shown["timeline"]
            .to_string()
            .contains("level 1: notifying alice"),
        "{shown}"
    );
    // Two sources and none named: exit 1, naming them.
    let out = s.run(ADMIN, &["send-test-alert"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr().contains("pick one with --source"),
        "{}",
        out.stderr()
    );

    // alerts list: table, wide, json; filters; exit 2 when nothing matches.
    let rows = s.run(ADMIN, &["alerts", "list"]).ok().rows();
    assert_eq!(
        rows[0],
        ["ID", "STATUS", "SEVERITY", "SOURCE", "AGE", "SUMMARY"]
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1][0], pd.to_string(), "newest first");
    let wide = s.run(ADMIN, &["alerts", "list", "-o", "wide"]).ok();
    assert!(wide.rows()[0].contains(&"LABELS".to_owned()));
    assert!(wide.stdout().contains("team=sre"), "{}", wide.stdout());
    let json = s
        .run(ADMIN, &["alerts", "list", "-o", "json", "--source", "prom"])
        .ok()
        .json();
    assert_eq!(json["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(json["alerts"][0]["id"], prom);
    let by_label = s
        .run(ADMIN, &["alerts", "list", "--label", "team=sre"])
        .ok()
        .rows();
    assert_eq!(by_label.len(), 2);
    let none = s.run(ADMIN, &["alerts", "list", "--status", "resolved"]);
    assert_eq!(none.code(), 2);
    assert!(none.stderr().contains("no alerts match"));
    let bad = s.run(ADMIN, &["alerts", "list", "--severity", "SEV9"]);
    assert_eq!(bad.code(), 1);
    assert!(bad.stderr().contains("severity"), "{}", bad.stderr());

    // alerts show: fields and the timeline table.
    let show = s
        .run(ADMIN, &["alerts", "show", &prom.to_string()])
        .ok()
        .stdout();
    assert!(show.contains("status:    pending"), "{show}");
    assert!(show.contains("source:    prom"), "{show}");
    assert!(show.contains("AT") && show.contains("created"), "{show}");
    assert_eq!(s.run(ADMIN, &["alerts", "show", "999"]).code(), 1);
    assert_eq!(s.run(ADMIN, &["alerts", "show", "x"]).code(), 1);

    // accept, unaccept, resolve, comment, as the responder of the team.
    let id = prom.to_string();
    let out = s.run(ALICE, &["alerts", "accept", &id]).ok();
    assert_eq!(out.stdout().trim(), format!("alert {id}: accepted"));
    let out = s
        .run(ALICE, &["alerts", "unaccept", &id, "-o", "json"])
        .ok()
        .json();
    assert_eq!(out[0]["status"], "pending");
    let out = s
        .run(ALICE, &["alerts", "comment", &id, "rebooting db-1"])
        .ok();
    assert_eq!(
        out.stdout().trim(),
        format!("alert {id}: comment added by user:alice")
    );
    // Several ids: each tried, exit 1 when one failed.
    let out = s.run(ALICE, &["alerts", "resolve", &id, &pd.to_string(), "999"]);
    assert_eq!(out.code(), 1);
    assert!(out.stdout().contains(&format!("alert {id}: resolved")));
    assert!(out.stdout().contains(&format!("alert {pd}: resolved")));
    assert!(out.stderr().contains("alert 999: 404"), "{}", out.stderr());

    // Exit 3: an observer may not act; a wrong token; no token at all.
    let fresh = test_alert(&s, &["--source", "prom"]).to_string();
    let out = s.run(OLGA, &["alerts", "accept", &fresh]);
    assert_eq!(out.code(), 3);
    assert!(
        out.stderr()
            .contains("403: missing permission `alerts.act`"),
        "{}",
        out.stderr()
    );
    let out = s.run("wrong-token-0123456789", &["alerts", "list"]);
    assert_eq!(out.code(), 3);
    assert!(out.stderr().contains("401"), "{}", out.stderr());
    let mut c = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    c.args(["alerts", "list"])
        .env("TOCSIN_SERVER", &s.base)
        .env_remove("TOCSIN_TOKEN")
        .env_remove("TOCSIN_CLIENT_CONFIG")
        .env("XDG_CONFIG_HOME", s.dir.join("no-config"));
    let out = Out(c.output().unwrap());
    assert_eq!(out.code(), 3);
    assert!(out.stderr().contains("no API token"), "{}", out.stderr());
    // Exit 1: nobody listening.
    let out = s.run(ADMIN, &["alerts", "list", "--server", "http://127.0.0.1:1"]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr()
            .contains("cannot reach http://127.0.0.1:1: Connection refused"),
        "{}",
        out.stderr()
    );
}

#[tokio::test]
async fn maintenance_tokens_audit_completions_and_the_client_config() {
    let s = Server::start("cli-rest").await;

    // maintenance: empty list is exit 2; start, list (table, json), end.
    assert_eq!(s.run(ALICE, &["maintenance", "list"]).code(), 2);
    let out = s
        .run(
            ALICE,
            &[
                "maintenance",
                "start",
                "--service",
                "checkout",
                "--for",
                "2h",
                "--reason",
                "db upgrade",
            ],
        )
        .ok();
    assert!(
        out.stdout()
            .starts_with("maintenance window 1 on service checkout until"),
        "{}",
        out.stdout()
    );
    let rows = s.run(ALICE, &["maintenance", "list"]).ok().rows();
    assert_eq!(
        rows[0],
        ["ID", "TARGET", "ACTIVE", "STARTS", "ENDS", "REASON", "BY"]
    );
    assert_eq!(rows[1][1], "service checkout");
    assert_eq!(rows[1][2], "yes");
    let json = s
        .run(ALICE, &["maintenance", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(json["windows"][0]["reason"], "db upgrade");
    // A test alert in the window is stored and pages nobody.
    let held = test_alert(&s, &["--source", "prom"]);
    let shown = s
        .run(ADMIN, &["alerts", "show", &held.to_string(), "-o", "json"])
        .ok()
        .json();
    assert!(
        shown["timeline"].to_string().contains("maintenance"),
        "{shown}"
    );
    let out = s.run(ALICE, &["maintenance", "end", "1"]).ok();
    assert!(
        out.stdout().starts_with("maintenance window 1 ended at"),
        "{}",
        out.stdout()
    );
    assert_eq!(s.run(OLGA, &["maintenance", "end", "1"]).code(), 3);
    assert_eq!(
        s.run(ALICE, &["maintenance", "start", "--for", "1h"])
            .code(),
        2,
        "clap: --service or --source"
    );

    // tokens: create prints only the secret on stdout.
    let out = s
        .run(
            ALICE,
            &["tokens", "create", "laptop", "--expires-in", "30d"],
        )
        .ok();
    let secret = out.stdout().trim().to_owned();
    assert!(secret.starts_with("tcn_"), "{secret}");
    assert!(out.stderr().contains("shown this once"), "{}", out.stderr());
    let rows = s.run(ALICE, &["tokens", "list"]).ok().rows();
    assert_eq!(
        rows[0],
        [
            "ID",
            "NAME",
            "ROLE",
            "USER",
            "CREATED",
            "LAST USED",
            "EXPIRES"
        ]
    );
    assert_eq!(rows[1][1], "laptop");
    let id = rows[1][0].clone();
    let wide = s.run(ADMIN, &["tokens", "list", "-o", "wide"]).ok().rows();
    assert_eq!(wide[0].last().unwrap(), "CREATED BY");
    assert_eq!(wide[1].last().unwrap(), "user:alice");
    // The new token works as alice, with her teams.
    let json = s.run(&secret, &["alerts", "list", "-o", "json"]);
    assert!(json.code() == 0 || json.code() == 2, "{}", json.stderr());
    let out = s.run(ALICE, &["tokens", "revoke", &id]).ok();
    assert!(out.stdout().contains("revoked"), "{}", out.stdout());
    let out = s.run(&secret, &["alerts", "list"]);
    assert_eq!(out.code(), 3);
    assert!(out.stderr().contains("was revoked"), "{}", out.stderr());
    assert_eq!(s.run(ALICE, &["tokens", "list"]).code(), 2, "none left");
    let out = s.run(ALICE, &["tokens", "create", "x", "--role", "admin"]);
    assert_eq!(out.code(), 3, "{}", out.stderr());
    let json = s
        .run(
            ADMIN,
            &["tokens", "create", "ci", "--user", "alice", "-o", "json"],
        )
        .ok()
        .json();
    assert_eq!(json["user"], "alice");
    assert!(json["token"].as_str().unwrap().starts_with("tcn_"));

    // audit: table, wide, json, filters, exit 2.
    let rows = s.run(OLGA, &["audit", "--actor", "user:alice"]).ok().rows();
    assert_eq!(
        rows[0],
        ["AT", "ACTOR", "ACTION", "KIND", "OBJECT", "CHANGED"]
    );
    let actions: Vec<&str> = rows[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(actions, ["revoke", "create", "end", "create"], "{rows:?}");
    let wide = s
        .run(OLGA, &["audit", "--kind", "maintenance", "-o", "wide"])
        .ok();
    assert!(wide.stdout().contains("db upgrade"), "{}", wide.stdout());
    let json = s
        .run(
            OLGA,
            &["audit", "--kind", "token", "--object", &id, "-o", "json"],
        )
        .ok()
        .json();
    assert_eq!(json["entries"].as_array().unwrap().len(), 2);
    let none = s.run(OLGA, &["audit", "--since", "2100-01-01T00:00:00Z"]);
    assert_eq!(none.code(), 2);
    assert_eq!(s.run(OLGA, &["audit", "--since", "soon"]).code(), 1);

    // The client config: server, token_file and output from the file.
    let cfg_dir = s.dir.join("home").join("tocsin");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let token_file = s.dir.join("token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).unwrap();
    let file = cfg_dir.join("client.yaml");
    std::fs::write(
        &file,
        format!(
            "server: {}\ntoken_file: {}\noutput: json\n",
            s.base,
            token_file.display()
        ),
    )
    .unwrap();
    let from_file = |env: &[(&str, &Path)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tocsin"));
        c.args(["audit", "--limit", "1"])
            .env_remove("TOCSIN_SERVER")
            .env_remove("TOCSIN_TOKEN")
            .env_remove("TOCSIN_CLIENT_CONFIG")
            .env("XDG_CONFIG_HOME", s.dir.join("no-config"));
        for (k, v) in env {
            c.env(k, v);
        }
        Out(c.output().unwrap())
    };
    let v = from_file(&[("XDG_CONFIG_HOME", &s.dir.join("home"))])
        .ok()
        .json();
    assert_eq!(
        v["entries"].as_array().unwrap().len(),
        1,
        "the default place"
    );
    let v = from_file(&[("TOCSIN_CLIENT_CONFIG", &file)]).ok().json();
    assert!(v["entries"].is_array(), "named by TOCSIN_CLIENT_CONFIG");
    std::fs::write(&file, "sever: x\n").unwrap();
    let out = from_file(&[("TOCSIN_CLIENT_CONFIG", &file)]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr().contains("unknown field `sever`"),
        "{}",
        out.stderr()
    );

    // completions for each shell.
    for shell in ["bash", "zsh", "fish"] {
        let out = s.run(ADMIN, &["completions", shell]).ok();
        assert!(out.stdout().contains("tocsin"), "{shell}");
        assert!(out.stdout().contains("send-test-alert"), "{shell}");
    }
}

#[tokio::test]
async fn incidents_open_update_resolve_and_report() {
    let s = Server::start("cli-incidents").await;
    assert_eq!(s.run(ALICE, &["incidents", "list"]).code(), 2, "none yet");
    let out = s
        .run(
            ALICE,
            &[
                "incidents",
                "open",
                "Checkout is slow",
                "--severity",
                "SEV1",
                "--service",
                "checkout=partial_outage",
                "--message",
                "We are looking into it.",
                "--public",
            ],
        )
        .ok();
    assert_eq!(
        out.stdout().trim(),
        "opened incident 1 [SEV1 investigating] Checkout is slow — checkout (partial_outage)"
    );
    let rows = s.run(ALICE, &["incidents", "list"]).ok().rows();
    assert_eq!(rows[0][..4], ["ID", "SEVERITY", "STATUS", "TITLE"]);
    assert_eq!(
        rows[1][..4],
        ["1", "SEV1", "investigating", "Checkout is slow"]
    );
    // An observer may read but not act (exit 3: the token is refused).
    let refused = s.run(OLGA, &["incidents", "update", "1", "x", "--public"]);
    assert_eq!(refused.code(), 3);
    assert!(
        refused.stderr().contains("incidents.manage"),
        "{}",
        refused.stderr()
    );
    s.run(
        ALICE,
        &[
            "incidents",
            "update",
            "1",
            "Fix rolling out",
            "--public",
            "--status",
            "monitoring",
        ],
    )
    .ok();
    let shown = s
        .run(ALICE, &["incidents", "show", "1", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["status"], "monitoring");
    assert_eq!(shown["updates"].as_array().unwrap().len(), 2);
    let out = s
        .run(ALICE, &["incidents", "resolve", "1", "--message", "Fixed."])
        .ok();
    assert!(out.stdout().contains("[SEV1 resolved]"), "{}", out.stdout());
    assert_eq!(
        s.run(ALICE, &["incidents", "list"]).code(),
        2,
        "no open ones"
    );
    assert_eq!(
        s.run(ALICE, &["incidents", "list", "--all"])
            .ok()
            .rows()
            .len(),
        2
    );
    let report = s.run(ALICE, &["incidents", "report", "1"]).ok().stdout();
    assert!(
        report.starts_with("# Incident 1: Checkout is slow"),
        "{report}"
    );
    assert!(report.contains("**Resolved** (public): Fixed."), "{report}");
}
