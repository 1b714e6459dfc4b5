//! The command line: check-config, migrate, --version, --help and the
//! start-up banner of `serve`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn tocsin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tocsin"))
}

fn example() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tocsin.yaml").to_owned()
}

#[test]
fn check_config_accepts_the_example_and_summarises_it() {
    let out = tocsin()
        .args(["check-config", &example()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(
        stdout.contains("1 team, 2 users, 1 schedule, 1 escalation policy, 1 service, 2 sources"),
        "{stdout}"
    );
}

#[test]
fn check_config_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("\"user:bob\"", "\"user:nobody\"")
        .replace("escalate_after: 5m", "escalate_after: soon")
        .replace(
            "escalation_policy: sre-default\n    grouping: alert",
            "escalation_policy: nope\n    grouping: alert",
        );
    std::fs::write(&bad, text).unwrap();
    let out = tocsin()
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    // serde stops at the first type error; fix it and the reference errors show.
    assert!(
        err.contains(
            "bad.yaml: escalation_policies[0].levels[0].escalate_after: `soon` is not a duration"
        ),
        "{err}"
    );

    let text = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("escalate_after: soon", "escalate_after: 5m");
    std::fs::write(&bad, text).unwrap();
    let out = tocsin()
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("escalation_policies[0].levels[1].notify[0]: unknown users id `nobody`"),
        "{err}"
    );
    assert!(
        err.contains("sources[1].escalation_policy: unknown escalation_policies id `nope`"),
        "{err}"
    );
    assert!(err.contains("2 problems in"), "{err}");

    let out = tocsin()
        .args(["check-config", "/nonexistent/tocsin.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

#[test]
fn version_and_help_explain_themselves() {
    let out = tocsin().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("tocsin {}", env!("CARGO_PKG_VERSION"))
    );
    let help = String::from_utf8(tocsin().arg("--help").output().unwrap().stdout).unwrap();
    for word in [
        "serve",
        "check-config",
        "migrate",
        "Alertmanager",
        "TOCSIN_LOG_FORMAT",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let help =
        String::from_utf8(tocsin().args(["serve", "--help"]).output().unwrap().stdout).unwrap();
    for word in [
        "TOCSIN_LISTEN",
        "TOCSIN_DATABASE_URL",
        "TOCSIN_CONFIG",
        "TOCSIN_PUBLIC_URL",
    ] {
        assert!(help.contains(word), "serve --help lacks {word}:\n{help}");
    }
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let out = tocsin()
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("migrations applied to the sqlite database")
    );
    assert!(dir.path().join("m.db").exists());
}

#[tokio::test]
async fn serve_prints_ready_to_paste_urls_and_keeps_generated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = |n: usize| {
        let out = std::fs::File::create(dir.path().join(format!("out{n}"))).unwrap();
        let mut cmd = tocsin();
        cmd.args([
            "serve",
            "--config",
            &example(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &db,
        ])
        .env("TOCSIN_LOG_FORMAT", "json");
        Proc::spawn_split("tocsin", &mut cmd, out, &dir.path().join(format!("err{n}")))
    };
    let banner = |n: usize| std::fs::read_to_string(dir.path().join(format!("out{n}"))).unwrap();

    let mut p = run(0);
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(30),
    )
    .await;
    p.terminate();
    let first = banner(0);
    assert!(
        first.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{first}"
    );
    let url_line = first
        .lines()
        .find(|l| l.starts_with("source prometheus "))
        .unwrap()
        .to_owned();
    assert!(
        url_line.contains(&format!(
            "http://127.0.0.1:{port}/api/v1/events/prometheus/"
        )),
        "{url_line}"
    );
    let key = url_line.rsplit('/').next().unwrap();
    assert_eq!(key.len(), 32, "a generated key is 128 bits of hex");

    // JSON logs, and a graceful stop.
    let logs = std::fs::read_to_string(dir.path().join("err0")).unwrap();
    let first_log: serde_json::Value = serde_json::from_str(logs.lines().next().unwrap()).unwrap();
    assert!(first_log["level"].is_string(), "{first_log}");
    assert!(logs.contains("shutting down"), "{logs}");

    // No admin can sign in yet: the banner offers a one-time setup link.
    let setup = first
        .lines()
        .find(|l| l.starts_with("no admin can sign in yet"))
        .unwrap_or_else(|| panic!("no setup link in {first}"));
    assert!(
        setup.contains(&format!("http://127.0.0.1:{port}/setup/")),
        "{setup}"
    );
    assert!(first.contains(&format!("web UI: http://127.0.0.1:{port}/")));

    // `users set-password` reads stdin and works on the server's storage.
    use std::io::Write;
    let mut child = tocsin()
        .args(["users", "set-password", "alice", "--database-url", &db])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let short = tocsin()
        .args(["users", "set-password", "alice", "--database-url", &db])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!short.status.success(), "an empty stdin sets nothing");
    assert!(String::from_utf8_lossy(&short.stderr).contains("no password on stdin"));

    // The generated key survives a restart.
    let mut p = run(1);
    let base = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{base}/readyz"), Duration::from_secs(30)).await;
    // Alice signs in with the password just set.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = form.text().await.unwrap();
    let at = page.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let csrf = &page[at..at + 48];
    let res = http
        .post(format!("{base}/login"))
        .header("cookie", cookie)
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "_csrf={csrf}&login=alice&password=correct+horse+battery"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("tocsin_session=")
    );
    p.terminate();
    let second = banner(1);
    assert!(
        second.contains(&url_line),
        "the key changed across restarts"
    );
    assert!(
        !second.contains("no admin can sign in yet"),
        "an admin can sign in now: {second}"
    );
}

#[tokio::test]
async fn oncall_asks_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    let mut cmd = tocsin();
    cmd.args([
        "serve",
        "--config",
        &example(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--database-url",
        &db,
    ]);
    let mut server = Proc::spawn_split("tocsin", &mut cmd, out, &dir.path().join("err"));
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(30),
    )
    .await;
    let url = format!("http://127.0.0.1:{port}");
    let oncall = |args: &[&str]| {
        tocsin()
            .arg("oncall")
            .args(args)
            .env("TOCSIN_SERVER", &url)
            .env("TOCSIN_TOKEN", "quickstart-admin-token-change-me")
            .env_remove("TOCSIN_API_TOKEN")
            .output()
            .unwrap()
    };
    // Example schedule: alice and bob weekly from Monday 2026-01-05 09:00 Berlin.
    let out = oncall(&["sre-primary", "--at", "2026-01-12T07:59:00Z"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SCHEDULE"), "{text}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[..3], ["sre-primary", "alice", "Alice"], "{text}");
    assert!(lines[1].ends_with("layer 1"), "{text}");
    let text = String::from_utf8(oncall(&["--at", "2026-01-12T08:00:00Z"]).stdout).unwrap();
    assert!(
        text.lines().nth(1).unwrap().starts_with("sre-primary  bob"),
        "{text}"
    );
    assert!(text.contains("(at 2026-01-12 08:00:00Z)"), "{text}");
    let json = oncall(&["-o", "json", "--at", "2026-01-12T08:00:00Z"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["on_call"]["user"], "bob", "{v}");

    let out = oncall(&["nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no schedule `nope`"));
    let out = tocsin()
        .args([
            "oncall",
            "--server",
            &url,
            "--token",
            "wrong-token-0123456789",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "a refused token is exit 3");
    assert!(String::from_utf8_lossy(&out.stderr).contains("set --token or TOCSIN_TOKEN"));
    let out = tocsin()
        .args(["oncall", "--server", "http://127.0.0.1:1", "--token", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach http://127.0.0.1:1: Connection refused"),
        "{err}"
    );
    server.terminate();
}
