use std::path::Path;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "TOCSIN_API_TOKEN" => Some("api-token-0123456789abcdef".into()),
        "SLACK_BOT_TOKEN" => Some("xoxb-test".into()),
        "SLACK_SIGNING_SECRET" => Some("signing".into()),
        "CAROL_SLACK_WEBHOOK" => Some("http://127.0.0.1:1/hook".into()),
        "TOCSIN_PROMETHEUS_KEY" => Some("prom-key-0123456789abcdef".into()),
        "TOCSIN_WATCHDOG_KEY" => Some("watchdog-key-0123456789abcdef".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    from_str(text, Path::new("."), &env)
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(p) => p
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect(),
    }
}

const MINIMAL: &str = r#"
users: [{id: alice, contacts: [{id: mail, type: email, address: a@example.com}], notify: {high: [{contact: mail, after: 0m}]}}]
escalation_policies:
  - id: p1
    levels: [{notify: ["user:alice"], escalate_after: 5m}]
sources:
  - {id: prom, type: prometheus, escalation_policy: p1}
"#;

#[test]
fn spec_example_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("twilio");
    std::fs::write(&secret, "twilio-secret\n").unwrap();
    let text = include_str!("../tests/spec-example.yaml")
        .replace("/run/secrets/twilio", secret.to_str().unwrap());
    let c = parse(&text).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(c.users.len(), 3);
    assert_eq!(
        c.providers.twilio.as_ref().unwrap().auth_token,
        "twilio-secret"
    );
    assert_eq!(
        c.sources[0].key.as_deref(),
        Some("prom-key-0123456789abcdef")
    );
    assert_eq!(
        c.escalation_policies[0].levels[1].escalate_after.as_secs(),
        600
    );
    assert_eq!(c.heartbeats[0].grace.as_secs(), 120);
    assert!(
        c.summary()
            .starts_with("1 team, 3 users, 1 schedule, 1 escalation policy")
    );
}

#[test]
fn shipped_example_is_valid() {
    let text = include_str!("../../../examples/tocsin.yaml");
    let c = from_str(text, Path::new("."), &|_| None).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(
        c.api_tokens[0].token.as_deref(),
        Some("quickstart-admin-token-change-me")
    );
    assert!(c.sources.iter().all(|s| s.key.is_none()));
}

#[test]
fn audit_retention_follows_database_retention_unless_set() {
    let days = |c: &Config| c.audit_retention().map(|d| d.as_secs() / 86_400);
    assert_eq!(days(&parse(MINIMAL).unwrap()), Some(90));
    let db = parse(&format!("{MINIMAL}database: {{retention: 7d}}\n")).unwrap();
    assert_eq!(days(&db), Some(7));
    let own = parse(&format!(
        "{MINIMAL}database: {{retention: 7d}}\naudit: {{retention: 400d}}\n"
    ))
    .unwrap();
    assert_eq!(days(&own), Some(400));
    let forever = parse(&format!("{MINIMAL}audit: {{retention: 0s}}\n")).unwrap();
    assert_eq!(days(&forever), None);
}

#[test]
fn tokens_act_as_known_users_and_objects_name_known_teams() {
    let text = format!(
        "{MINIMAL}api_tokens:\n  - {{name: a, token: token-0123456789abcdef, role: admin, user: alice}}\n  - {{name: b, token: token-abcdef0123456789, role: observer, user: nobody}}\nschedules:\n  - {{id: s, timezone: UTC, team: nope, layers: []}}\n"
    );
    let p = problems(&text);
    assert!(
        p.iter().any(
            |p| p.starts_with("api_tokens[0].role:") && p.contains("no higher than its user's")
        ),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.starts_with("api_tokens[1].user:")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.starts_with("schedules[0].team:")),
        "{p:?}"
    );
}

#[test]
fn minimal_is_valid_and_defaults_apply() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.listen(), DEFAULT_LISTEN);
    assert_eq!(c.database_url(), DEFAULT_DATABASE_URL);
    assert_eq!(c.body_limit(), 5 * 1024 * 1024);
    assert_eq!(c.retention().map(|d| d.as_secs()), Some(90 * 86_400));
    let keep = parse(&format!("{MINIMAL}database: {{retention: 0s}}\n")).unwrap();
    assert_eq!(keep.retention(), None);
    let short = parse(&format!("{MINIMAL}database: {{retention: 7d}}\n")).unwrap();
    assert_eq!(short.retention().map(|d| d.as_secs()), Some(7 * 86_400));
    assert_eq!(c.sources[0].default_severity, tocsin_domain::Severity::Sev2);
    assert_eq!(
        c.sources[0].high_priority_from,
        tocsin_domain::Severity::Sev1
    );
    assert_eq!(c.sources[0].grouping, tocsin_domain::Grouping::Group);
    assert_eq!(parse("").unwrap().sources.len(), 0);
}

#[test]
fn bad_reference_names_the_key_path() {
    let text = MINIMAL.replace("user:alice", "user:zed");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("escalation_policies[0].levels[0].notify[0]: unknown users id `zed`; expected one of: alice"),
        "{p:?}"
    );
}

#[test]
fn unknown_key_is_an_error_with_its_path() {
    let text = MINIMAL.replace(
        "escalation_policy: p1}",
        "escalation_policy: p1, colour: red}",
    );
    let p = problems(&text);
    assert!(p[0].starts_with("sources[0]"), "{p:?}");
    assert!(p[0].contains("unknown field `colour`"), "{p:?}");
}

#[test]
fn bad_duration_and_severity_say_what_was_expected() {
    let p = problems(&MINIMAL.replace("escalate_after: 5m", "escalate_after: 5 minutes"));
    assert!(
        p[0].starts_with("escalation_policies[0].levels[0].escalate_after"),
        "{p:?}"
    );
    assert!(p[0].contains("expected a number with a unit"), "{p:?}");
    let p = problems(&MINIMAL.replace(
        "escalation_policy: p1}",
        "escalation_policy: p1, default_severity: SEV7}",
    ));
    assert!(p[0].starts_with("sources[0].default_severity"), "{p:?}");
    assert!(p[0].contains("SEV0, SEV1"), "{p:?}");
}

#[test]
fn env_expansion_and_missing_variables() {
    let text = format!(
        "{MINIMAL}api_tokens: [{{name: ci, token: \"${{TOCSIN_API_TOKEN}}\", role: admin}}]\n"
    );
    assert_eq!(
        parse(&text).unwrap().api_tokens[0].token.as_deref(),
        Some("api-token-0123456789abcdef")
    );
    let text = text.replace("TOCSIN_API_TOKEN", "NOPE_NOT_SET");
    let p = problems(&text);
    assert!(
        p[0].starts_with("api_tokens[0].token: environment variable NOPE_NOT_SET is not set"),
        "{p:?}"
    );
    assert_eq!(
        expand::expand_str("a$$b${X:-d}", &|_| None).unwrap(),
        "a$bd"
    );
}

#[test]
fn secret_files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), "file-key-0123456789abcdef\n").unwrap();
    let text = MINIMAL.replace(
        "escalation_policy: p1}",
        "escalation_policy: p1, key_file: k}",
    );
    let c = from_str(&text, dir.path(), &env).unwrap();
    assert_eq!(
        c.sources[0].key.as_deref(),
        Some("file-key-0123456789abcdef")
    );
    let p = from_str(
        &text.replace("key_file: k", "key_file: missing"),
        dir.path(),
        &env,
    )
    .unwrap_err();
    assert!(
        p[0].path == "sources[0].key_file" && p[0].message.contains("cannot read secret file"),
        "{p:?}"
    );
    let both = text.replace("key_file: k", "key_file: k, key: x");
    let p = from_str(&both, dir.path(), &env).unwrap_err();
    assert!(p[0].message.contains("not both"), "{p:?}");
}

#[test]
fn short_keys_duplicate_ids_and_bad_formats() {
    let text =
        format!("{MINIMAL}  - {{id: prom, type: prometheus, escalation_policy: p1, key: short}}\n");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|p| p.starts_with("sources[1].id: duplicate id `prom`")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("sources[1].key: the key is 5 characters long")),
        "{p:?}"
    );

    let text = format!(
        "{MINIMAL}schedules: [{{id: s, timezone: Mars/Base, layers: [{{users: [alice], rotation: 1w, handoff: soon, restrict: [{{days: funday, from: \"08:00\", to: \"25:00\"}}]}}]}}]\n"
    );
    let p = problems(&text);
    for want in [
        "schedules[0].timezone: `Mars/Base` is not an IANA time zone",
        "schedules[0].layers[0].handoff: `soon` is not a local date and time",
        "schedules[0].layers[0].restrict[0].days: `funday` is not a day list",
        "schedules[0].layers[0].restrict[0].to: `25:00` is not a time of day",
    ] {
        assert!(
            p.iter().any(|p| p.starts_with(want)),
            "missing {want}: {p:?}"
        );
    }
}

#[test]
fn template_syntax_errors_are_rejected_with_path() {
    let text = MINIMAL.replace(
        "escalation_policy: p1}",
        "escalation_policy: p1, templates: {summary: \"{{ broken\"}}",
    );
    let p = problems(&text);
    assert!(
        p[0].starts_with("sources[0].templates.summary: template does not compile"),
        "{p:?}"
    );
}

#[test]
fn error_display_names_the_file() {
    let e = ConfigError {
        file: "x/tocsin.yaml".into(),
        problems: vec![Problem::new("sources[0].key", "too short")],
    };
    assert_eq!(e.to_string(), "x/tocsin.yaml: sources[0].key: too short");
}

#[test]
fn day_lists() {
    use chrono::Weekday::*;
    assert_eq!(
        validate::parse_days("mon-fri").unwrap(),
        vec![Mon, Tue, Wed, Thu, Fri]
    );
    assert_eq!(validate::parse_days("sat,sun").unwrap(), vec![Sat, Sun]);
    assert_eq!(
        validate::parse_days("fri-mon").unwrap(),
        vec![Fri, Sat, Sun, Mon]
    );
}

#[test]
fn database_url_password_is_redacted() {
    assert_eq!(
        validate::redact_url("postgres://u:secret@h/db"),
        "postgres://u:<redacted>@h/db"
    );
}

#[test]
fn schedules_convert_to_the_domain_model() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("twilio");
    std::fs::write(&secret, "x").unwrap();
    let text = include_str!("../tests/spec-example.yaml")
        .replace("/run/secrets/twilio", secret.to_str().unwrap());
    let c = parse(&text).unwrap();
    let s = c.schedules[0].to_domain();
    assert_eq!(s.tz, chrono_tz::Europe::Berlin);
    assert_eq!(s.layers[0].users, ["alice", "bob"]);
    assert_eq!(
        s.layers[0].rotation,
        tocsin_domain::schedule::Rotation::Days(7)
    );
    assert_eq!(s.layers[0].restrictions[0].days.len(), 5);
    assert_eq!(s.overrides[0].user, "carol");
    // Christmas Eve evening: carol's override.
    let t = chrono::DateTime::parse_from_rfc3339("2026-12-24T20:00:00+01:00")
        .unwrap()
        .to_utc();
    assert_eq!(s.on_call(t).map(|o| o.user).as_deref(), Some("carol"));
}

#[test]
fn notification_settings_default_and_are_checked() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.bundle_window().as_secs(), 10);
    assert_eq!(c.action_link_ttl().as_secs(), 86_400);
    let set = parse(&format!(
        "{MINIMAL}notifications: {{bundle_window: 30s, action_link_ttl: 2h}}\n"
    ))
    .unwrap();
    assert_eq!(set.bundle_window().as_secs(), 30);
    assert_eq!(set.action_link_ttl().as_secs(), 7200);
    let off = parse(&format!("{MINIMAL}notifications: {{bundle_window: 0s}}\n")).unwrap();
    assert_eq!(off.bundle_window().as_secs(), 0);
    let p = problems(&format!(
        "{MINIMAL}notifications: {{bundle_window: 2h, action_link_ttl: 0s}}\n"
    ));
    assert_eq!(
        p,
        [
            "notifications.action_link_ttl: must be longer than 0 (e.g. 24h)",
            "notifications.bundle_window: must be at most 1h: longer would hold pages back too long (0s turns bundling off)"
        ]
    );
}

#[test]
fn the_retry_policy_defaults_and_is_checked() {
    let c = parse(MINIMAL).unwrap();
    let r = &c.notifications.retry;
    assert_eq!(
        (
            r.attempts(),
            r.backoff().as_secs(),
            r.max_backoff().as_secs()
        ),
        (8, 10, 300)
    );
    let set = parse(&format!(
        "{MINIMAL}notifications: {{retry: {{attempts: 3, backoff: 1s, max_backoff: 4s}}}}\n"
    ))
    .unwrap();
    let r = &set.notifications.retry;
    assert_eq!(
        (
            r.attempts(),
            r.backoff().as_secs(),
            r.max_backoff().as_secs()
        ),
        (3, 1, 4)
    );
    let p = problems(&format!(
        "{MINIMAL}notifications: {{retry: {{attempts: 0, backoff: 10m, max_backoff: 1m}}}}\n"
    ));
    assert_eq!(
        p,
        [
            "notifications.retry.attempts: must be from 1 (no retry) to 100",
            "notifications.retry.max_backoff: must not be shorter than notifications.retry.backoff (10m)"
        ]
    );
    let p = problems(&format!(
        "{MINIMAL}notifications: {{retry: {{tries: 3}}}}\n"
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("notifications.retry"), "{p:?}");
}

#[test]
fn server_tls_reads_pem_files_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key\n").unwrap();
    let text = format!("{MINIMAL}server: {{tls: {{cert_file: cert.pem, key_file: key.pem}}}}\n");
    let problems = crate::from_str(&text, dir.path(), &|_| None).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "server.tls.key_file");
    std::fs::write(
        dir.path().join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let c = crate::from_str(&text, dir.path(), &|_| None).unwrap();
    assert!(
        c.server
            .tls
            .unwrap()
            .cert
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
}
