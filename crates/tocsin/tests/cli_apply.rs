//! `tocsin apply` and `tocsin export` against a running server: plans and
//! exit codes, a file owning what it provisioned, errors that apply
//! nothing, and an export that applies back as no change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

const TOKEN: &str = "apply-admin-token-0123456789";
const PROM_KEY: &str = "prom-key-from-env-0123456789";
const CAROL_HOOK: &str = "https://hooks.slack.example/T0/B0/carol-secret-path";

fn tocsin(base: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    c.env("TOCSIN_SERVER", base)
        .env("TOCSIN_TOKEN", TOKEN)
        .env("PROM_KEY", PROM_KEY)
        .env("CAROL_HOOK", CAROL_HOOK);
    c
}

fn apply(base: &str, file: &Path, dry_run: bool) -> Output {
    let mut c = tocsin(base);
    c.arg("apply").arg(file);
    if dry_run {
        c.arg("--dry-run");
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn users(base: &str) -> Vec<(String, String)> {
    api_get(base, TOKEN, "/api/v1/users").await["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_owned(),
                u["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const TEAM_V1: &str = r#"
teams:
  - {id: ops, name: Operations}
users:
  - {id: dave, name: Dave}
escalation_policies:
  - {id: ops-default, levels: [{notify: ["user:dave"], escalate_after: 5m}]}
"#;

const TEAM_V2: &str = r#"
users:
  - {id: dave, name: Dave Example}
escalation_policies:
  - {id: ops-default, levels: [{notify: ["user:dave"], escalate_after: 5m}]}
"#;

#[tokio::test]
async fn apply_plans_applies_and_export_round_trips() {
    let dir = scratch("cli-apply");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let main = dir.join("tocsin.yaml");
    std::fs::write(
        &main,
        format!(
            r#"
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{db}"}}
api_tokens: [{{name: ci, token: {TOKEN}, role: admin}}]
users:
  - {{id: alice, name: Alice}}
  - id: carol
    contacts: [{{id: chat, type: slack, webhook_url: "${{CAROL_HOOK}}"}}]
    notify: {{high: [{{contact: chat, after: 0m}}]}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:carol"], escalate_after: 5m}}]}}
sources:
  - {{id: prom, type: prometheus, key: "${{PROM_KEY}}", escalation_policy: p}}
"#,
            db = dir.join("t.db").display()
        ),
    )
    .unwrap();
    let out = std::fs::File::create(dir.join("out")).unwrap();
    let mut cmd = tocsin(&base);
    cmd.args(["serve", "--config"]).arg(&main);
    let mut server = Proc::spawn_split("tocsin", &mut cmd, out, &dir.join("err"));
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;

    // A dry run prints the plan, exits 2 and applies nothing.
    let team = dir.join("team.yaml");
    std::fs::write(&team, TEAM_V1).unwrap();
    let o = apply(&base, &team, true);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        "+ create teams/ops\n+ create users/dave\n+ create escalation_policies/ops-default\n3 changes planned (dry run: nothing applied)\n"
    );
    assert!(!users(&base).await.iter().any(|(id, _)| id == "dave"));

    let o = apply(&base, &team, false);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).ends_with("3 changes applied\n"),
        "{}",
        stdout(&o)
    );
    assert!(users(&base).await.contains(&("dave".into(), "Dave".into())));
    let o = apply(&base, &team, true);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("no changes"), "{}", stdout(&o));

    // A changed file: updates name their keys; only its own objects go.
    std::fs::write(&team, TEAM_V2).unwrap();
    let o = apply(&base, &team, true);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stdout(&o),
        "~ update users/dave (name)\n- delete teams/ops\n2 changes planned (dry run: nothing applied)\n"
    );
    assert_eq!(apply(&base, &team, false).status.code(), Some(0));
    let teams = api_get(&base, TOKEN, "/api/v1/teams").await;
    assert_eq!(teams["teams"], serde_json::json!([]));

    // Errors apply nothing: the file's own (check-config's words) ...
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "users:\n  - {id: erin, colour: red}\n").unwrap();
    let o = apply(&base, &broken, false);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("users[0]"), "{}", stderr(&o));
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
    // ... and the server's: another file's object may not be redefined.
    std::fs::write(&broken, "users:\n  - {id: alice, name: Not Alice}\n").unwrap();
    let o = apply(&base, &broken, false);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("users[0]: users `alice` already exists and comes from the file"),
        "{}",
        stderr(&o)
    );
    assert!(
        users(&base)
            .await
            .contains(&("alice".into(), "Alice".into()))
    );

    // Export: secrets as their references, never in clear; applying the
    // export back (under any name) plans no change.
    let o = tocsin(&base).arg("export").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        !text.contains(PROM_KEY) && !text.contains("carol-secret-path"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert!(
        text.contains("${PROM_KEY}") && text.contains("${CAROL_HOOK}"),
        "{text}"
    );
    let exported = dir.join("exported.yaml");
    std::fs::write(&exported, &text).unwrap();
    let o = apply(&base, &exported, true);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no changes"), "{}", stdout(&o));
    server.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
