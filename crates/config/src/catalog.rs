//! The catalog part of tocsin.yaml as stored objects, and the typed
//! [`Catalog`] the server runs on.
//!
//! Storage keeps one object per (kind, id) with its spec in the shape of
//! the object in the file, so the API takes and shows the same bodies.
//! Stored objects become a file-shaped document again to be checked by the
//! same validation as `check-config` ([`parse_document`]), and a checked
//! document becomes the typed catalog ([`build`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tocsin_domain::catalog as c;
use tocsin_domain::escalation::{Level, Policy, Target};

use crate::{Config, ContactType, Problem, Refs, SmtpTls};

/// The stored kinds, in the order a reader meets them in a file (the first
/// two, providers and API tokens, only files provision).
pub const KINDS: &[&str] = &[
    "providers",
    "api_tokens",
    "teams",
    "users",
    "support_hours",
    "schedules",
    "escalation_policies",
    "services",
    "sources",
    "heartbeats",
];

/// The provider objects (kind `providers`, one per id).
pub const PROVIDERS: &[&str] = &["smtp", "twilio", "slack", "ntfy"];

/// Secret fields of each kind, as paths inside one object (`[*]`: any
/// index). API reads leave them out; export prints their `${ENV}` or
/// `*_file` reference instead.
fn secret_fields(kind: &str, id: &str) -> &'static [&'static str] {
    match (kind, id) {
        ("users", _) => &["contacts[*].webhook_url", "contacts[*].secret"],
        ("services", _) => &["announce[*].slack_webhook_url", "announce[*].secret"],
        ("sources", _) | ("heartbeats", _) => &["key"],
        ("api_tokens", _) => &["token"],
        ("providers", "smtp") => &["password"],
        ("providers", "twilio") => &["auth_token"],
        ("providers", "slack") => &["bot_token", "signing_secret"],
        ("providers", "ntfy") => &["token"],
        _ => &[],
    }
}

/// `contacts[3].secret` → `contacts[*].secret`.
fn pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for ch in path.chars() {
        match ch {
            '[' => {
                in_index = true;
                out.push_str("[*");
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(ch),
        }
    }
    out
}

/// The path of member `k` under `path`.
fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_owned()
    } else {
        format!("{path}.{k}")
    }
}

/// Whether `path` (inside an object of `kind`) holds a secret.
pub fn is_secret(kind: &str, id: &str, path: &str) -> bool {
    let p = pattern(path);
    secret_fields(kind, id).contains(&p.as_str())
}

/// One object of the file, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: &'static str,
    pub id: String,
    /// The object as in the file, without nulls; an API token's `token` is
    /// replaced by its `token_sha256`.
    pub spec: Value,
    /// How its secrets were written (path inside the object → reference).
    pub secret_refs: BTreeMap<String, String>,
}

/// Drop `null` members, recursively: the stored spec is the file as written.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The spec of one object as stored and compared.
pub fn normalize(kind: &str, mut spec: Value) -> Value {
    strip_nulls(&mut spec);
    if kind == "api_tokens"
        && let Value::Object(m) = &mut spec
        && let Some(Value::String(token)) = m.remove("token")
    {
        m.insert(
            "token_sha256".into(),
            Value::String(tocsin_domain::TokenDigest::of(&token).to_hex()),
        );
    }
    spec
}

/// Every catalog object of a checked file, with the secret references
/// `refs` recorded for it.
pub fn entries(config: &Config, refs: &Refs) -> Result<Vec<Entry>, serde_json::Error> {
    fn list<T: serde::Serialize>(
        out: &mut Vec<Entry>,
        refs: &Refs,
        kind: &'static str,
        items: &[T],
        id: impl Fn(&T) -> &str,
    ) -> Result<(), serde_json::Error> {
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("{kind}[{i}].");
            out.push(entry(
                kind,
                id(item),
                serde_json::to_value(item)?,
                refs,
                &prefix,
            ));
        }
        Ok(())
    }
    fn entry(kind: &'static str, id: &str, spec: Value, refs: &Refs, prefix: &str) -> Entry {
        let secret_refs = refs
            .iter()
            .filter_map(|(path, r)| {
                let rel = path.strip_prefix(prefix)?;
                is_secret(kind, id, rel).then(|| (rel.to_owned(), r.clone()))
            })
            .collect();
        Entry {
            kind,
            id: id.to_owned(),
            spec: normalize(kind, spec),
            secret_refs,
        }
    }
    let mut out = Vec::new();
    let p = &config.providers;
    let providers = [
        ("smtp", p.smtp.as_ref().map(serde_json::to_value)),
        ("twilio", p.twilio.as_ref().map(serde_json::to_value)),
        ("slack", p.slack.as_ref().map(serde_json::to_value)),
        ("ntfy", p.ntfy.as_ref().map(serde_json::to_value)),
    ];
    for (name, spec) in providers {
        if let Some(spec) = spec {
            let prefix = format!("providers.{name}.");
            out.push(entry("providers", name, spec?, refs, &prefix));
        }
    }
    list(&mut out, refs, "api_tokens", &config.api_tokens, |t| {
        &t.name
    })?;
    list(&mut out, refs, "teams", &config.teams, |t| &t.id)?;
    list(&mut out, refs, "users", &config.users, |u| &u.id)?;
    list(
        &mut out,
        refs,
        "support_hours",
        &config.support_hours,
        |s| &s.id,
    )?;
    list(&mut out, refs, "schedules", &config.schedules, |s| &s.id)?;
    list(
        &mut out,
        refs,
        "escalation_policies",
        &config.escalation_policies,
        |p| &p.id,
    )?;
    list(&mut out, refs, "services", &config.services, |s| &s.id)?;
    list(&mut out, refs, "sources", &config.sources, |s| &s.id)?;
    list(&mut out, refs, "heartbeats", &config.heartbeats, |h| &h.id)?;
    Ok(out)
}

/// A file-shaped document of objects (kind, id, spec), in the given order.
pub fn document<'a>(objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>) -> Value {
    let mut doc = Map::new();
    for (kind, id, spec) in objects {
        if kind == "providers" {
            let providers = doc
                .entry("providers")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = providers {
                m.insert(id.to_owned(), spec.clone());
            }
        } else if let Value::Array(items) = doc
            .entry(kind.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            items.push(spec.clone());
        }
    }
    Value::Object(doc)
}

/// A stored object's spec as `tocsin export` prints it: each secret as its
/// reference (`${ENV}`, or the `*_file` key it was read from), or as
/// `${TOCSIN_<KIND>_<ID>_<FIELD>}` when it was set through the API; an API
/// token as its `${ENV}`/`token_file` when it has one, else its digest.
/// The second value lists the variables that only export made up.
pub fn exported(
    kind: &str,
    id: &str,
    spec: &Value,
    refs: &BTreeMap<String, String>,
) -> (Value, Vec<String>) {
    fn env_name(kind: &str, id: &str, path: &str) -> String {
        let raw = format!("TOCSIN_{kind}_{id}_{path}");
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .split('_')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    }
    fn walk(
        kind: &str,
        id: &str,
        v: &mut Value,
        path: &str,
        refs: &BTreeMap<String, String>,
        made_up: &mut Vec<String>,
    ) {
        match v {
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    let p = child(path, &k);
                    if is_secret(kind, id, &p) {
                        match refs.get(&p) {
                            Some(r) if r.starts_with("file:") => {
                                m.remove(&k);
                                m.insert(
                                    format!("{k}_file"),
                                    Value::String(r.trim_start_matches("file:").to_owned()),
                                );
                            }
                            Some(r) => {
                                m.insert(k, Value::String(r.clone()));
                            }
                            None => {
                                let name = env_name(kind, id, &p);
                                m.insert(k, Value::String(format!("${{{name}}}")));
                                made_up.push(name);
                            }
                        }
                    } else if let Some(x) = m.get_mut(&k) {
                        walk(kind, id, x, &p, refs, made_up);
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    walk(kind, id, x, &format!("{path}[{i}]"), refs, made_up);
                }
            }
            _ => {}
        }
    }
    let mut out = spec.clone();
    let mut made_up = Vec::new();
    if kind == "api_tokens"
        && let (Value::Object(m), Some(r)) = (&mut out, refs.get("token"))
    {
        m.remove("token_sha256");
        if let Some(path) = r.strip_prefix("file:") {
            m.insert("token_file".into(), Value::String(path.to_owned()));
        } else {
            m.insert("token".into(), Value::String(r.clone()));
        }
        return (out, made_up);
    }
    walk(kind, id, &mut out, "", refs, &mut made_up);
    (out, made_up)
}

/// A document as YAML text.
pub fn to_yaml(doc: &Value) -> Result<String, String> {
    yaml_serde::to_string(doc).map_err(|e| e.to_string())
}

/// Type and check a file-shaped document with the rules of `check-config`.
pub fn parse_document(doc: Value) -> Result<Config, Vec<Problem>> {
    let config: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![Problem::new(path, e.into_inner().to_string())]
    })?;
    crate::validate::validate(&config)?;
    Ok(config)
}

/// A spec as the API shows it: secrets left out.
pub fn redact(kind: &str, id: &str, spec: &mut Value) {
    fn walk(kind: &str, id: &str, v: &mut Value, path: &str) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !is_secret(kind, id, &child(path, k)));
                for (k, x) in m.iter_mut() {
                    walk(kind, id, x, &child(path, k));
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    walk(kind, id, x, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }
    walk(kind, id, spec, "");
}

/// The typed catalog of a checked config (values that would not parse were
/// reported by validation and are left out here).
pub fn build(config: &Config, version: i64) -> c::Catalog {
    let name = |n: &Option<String>, id: &str| n.clone().unwrap_or_else(|| id.to_owned());
    let mut out = c::Catalog {
        version,
        ..c::Catalog::default()
    };
    for t in &config.teams {
        out.teams.insert(
            t.id.clone(),
            c::Team {
                id: t.id.clone(),
                name: name(&t.name, &t.id),
            },
        );
    }
    for u in &config.users {
        let rules = |rs: &[crate::NotifyRule]| {
            rs.iter()
                .map(|r| (r.contact.clone(), r.after.as_chrono()))
                .collect()
        };
        let contacts = u
            .contacts
            .iter()
            .filter_map(|ct| {
                Some(c::Contact {
                    id: ct.id.clone(),
                    channel: ct.kind.channel().to_owned(),
                    address: ct.value()?.to_owned(),
                    slack_id: match ct.kind {
                        ContactType::Slack => ct.channel.clone(),
                        _ => None,
                    },
                    secret: ct.secret.clone(),
                })
            })
            .collect();
        out.users.insert(
            u.id.clone(),
            c::User {
                id: u.id.clone(),
                name: name(&u.name, &u.id),
                email: u.email.clone(),
                timezone: u.timezone.clone(),
                role: u.role,
                teams: u.teams.clone(),
                contacts,
                high: rules(&u.notify.high),
                low: rules(&u.notify.low),
                handoff_notices: u.notify.handoffs,
            },
        );
    }
    for h in &config.support_hours {
        out.support_hours.insert(h.id.clone(), h.to_domain());
    }
    for s in &config.schedules {
        out.schedules.insert(
            s.id.clone(),
            c::ScheduleEntry {
                name: name(&s.name, &s.id),
                team: s.team.clone(),
                model: s.to_domain(),
            },
        );
    }
    for p in &config.escalation_policies {
        let levels = p
            .levels
            .iter()
            .map(|l| Level {
                targets: l
                    .notify
                    .iter()
                    .filter_map(|t| t.parse::<Target>().ok())
                    .collect(),
                escalate_after: l.escalate_after,
            })
            .collect();
        out.policies.insert(
            p.id.clone(),
            c::PolicyEntry {
                name: name(&p.name, &p.id),
                team: p.team.clone(),
                routing_key: p.routing_key.clone(),
                policy: Policy {
                    id: p.id.clone(),
                    repeat: p.repeat,
                    levels,
                },
            },
        );
    }
    for s in &config.services {
        out.services.insert(
            s.id.clone(),
            c::Service {
                id: s.id.clone(),
                name: name(&s.name, &s.id),
                team: s.team.clone(),
                policy_id: s.escalation_policy.clone(),
                public: s.public,
                auto_incident_from: s.auto_incident_from,
                announce: s
                    .announce
                    .iter()
                    .filter_map(|a| match (&a.slack_webhook_url, &a.webhook_url) {
                        (Some(u), _) => Some(c::Announcement {
                            channel: "slack".into(),
                            address: u.clone(),
                            secret: None,
                        }),
                        (None, Some(u)) => Some(c::Announcement {
                            channel: "webhook".into(),
                            address: u.clone(),
                            secret: a.secret.clone(),
                        }),
                        (None, None) => None,
                    })
                    .collect(),
            },
        );
    }
    for s in &config.sources {
        out.sources.insert(
            s.id.clone(),
            c::Source {
                id: s.id.clone(),
                name: name(&s.name, &s.id),
                kind: s.kind,
                team: s.team.clone(),
                policy_id: s.escalation_policy.clone(),
                service_id: s.service.clone(),
                grouping: s.grouping,
                severity_map: s.severity_map.clone(),
                default_severity: s.default_severity,
                high_priority_from: s.high_priority_from,
                support_hours: s.support_hours.clone(),
                outside_support_hours: s.outside_support_hours,
                summary_template: s.templates.as_ref().and_then(|t| t.summary.clone()),
                details_template: s.templates.as_ref().and_then(|t| t.details.clone()),
                rate_limit_per_minute: s
                    .rate_limit_per_minute
                    .unwrap_or(crate::DEFAULT_RATE_LIMIT_PER_MINUTE),
                configured_key: s.key.clone(),
            },
        );
    }
    for h in &config.heartbeats {
        out.heartbeats.insert(
            h.id.clone(),
            c::Heartbeat {
                id: h.id.clone(),
                name: name(&h.name, &h.id),
                interval: h.interval,
                grace: h.grace,
                team: h.team.clone(),
                policy_id: h.escalation_policy.clone(),
                service_id: h.service.clone(),
                configured_key: h.key.clone(),
            },
        );
    }
    out.api_tokens = config
        .api_tokens
        .iter()
        .filter_map(|t| {
            Some(c::ApiToken {
                name: t.name.clone(),
                digest: t.digest()?,
                role: t.role,
                user: t.user.clone(),
            })
        })
        .collect();
    let p = &config.providers;
    out.providers = c::Providers {
        smtp: p.smtp.as_ref().map(|s| c::SmtpProvider {
            host: s.host.clone(),
            port: s.port,
            from: s.from.clone(),
            tls: match s.tls {
                SmtpTls::None => c::SmtpTls::None,
                SmtpTls::Starttls => c::SmtpTls::Starttls,
                SmtpTls::Tls => c::SmtpTls::Tls,
            },
            username: s.username.clone(),
            password: s.password.clone(),
        }),
        twilio: p.twilio.as_ref().map(|t| c::TwilioProvider {
            account_sid: t.account_sid.clone(),
            auth_token: t.auth_token.clone(),
            from: t.from.clone(),
            api_base: t.api_base.clone(),
        }),
        slack: p.slack.as_ref().map(|s| c::SlackProvider {
            bot_token: s.bot_token.clone(),
            signing_secret: s.signing_secret.clone(),
            api_base: s.api_base.clone(),
        }),
        ntfy: p.ntfy.as_ref().map(|n| c::NtfyProvider {
            base_url: n.base_url.clone(),
            token: n.token.clone(),
        }),
    };
    out.index();
    out
}

/// Named OpenAPI schemas: (component name, schema).
pub type Schemas = Vec<(
    String,
    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
)>;

/// The OpenAPI schema of an editable kind's objects: the name of its
/// component and every component it needs (itself included), from the
/// same types the file is read with.
pub fn schemas(kind: &str) -> Option<(String, Schemas)> {
    fn of<T: utoipa::ToSchema>() -> (String, Schemas) {
        let name = T::name().into_owned();
        let mut all = vec![(name.clone(), T::schema())];
        T::schemas(&mut all);
        (name, all)
    }
    Some(match kind {
        "teams" => of::<crate::Team>(),
        "users" => of::<crate::User>(),
        "support_hours" => of::<crate::SupportHours>(),
        "schedules" => of::<crate::Schedule>(),
        "escalation_policies" => of::<crate::EscalationPolicy>(),
        "services" => of::<crate::Service>(),
        "sources" => of::<crate::Source>(),
        "heartbeats" => of::<crate::Heartbeat>(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    const FILE: &str = r#"
api_tokens:
  - {name: ci, token: "${TOKEN}", role: admin}
providers:
  slack: {signing_secret: "${SLACK_SECRET}"}
users:
  - id: carol
    contacts:
      - {id: mail, type: email, address: carol@example.com}
      - {id: hook, type: webhook, url: https://example.com/h, secret_file: hook.secret}
escalation_policies:
  - {id: p, levels: [{notify: ["user:carol"], escalate_after: 5m}]}
sources:
  - {id: prom, type: prometheus, key: "${KEY}", escalation_policy: p}
"#;

    fn load() -> (Config, Refs, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook.secret"), "hook-secret-value\n").unwrap();
        let env = |n: &str| match n {
            "TOKEN" => Some("token-0123456789abcdef".to_owned()),
            "SLACK_SECRET" => Some("slack-secret".to_owned()),
            "KEY" => Some("key-0123456789abcdef".to_owned()),
            _ => None,
        };
        let (c, refs) = crate::from_str_with_refs(FILE, dir.path(), &env).unwrap();
        (c, refs, dir)
    }

    #[test]
    fn entries_keep_secret_references_and_store_token_digests() {
        let (config, refs, _dir) = load();
        let entries = entries(&config, &refs).unwrap();
        let kinds: Vec<_> = entries.iter().map(|e| (e.kind, e.id.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("providers", "slack"),
                ("api_tokens", "ci"),
                ("users", "carol"),
                ("escalation_policies", "p"),
                ("sources", "prom")
            ]
        );
        let token = &entries[1];
        assert_eq!(
            token.spec,
            json!({"name": "ci", "role": "admin", "token_sha256": tocsin_domain::TokenDigest::of("token-0123456789abcdef").to_hex()})
        );
        assert_eq!(token.secret_refs["token"], "${TOKEN}");
        let carol = &entries[2];
        assert_eq!(carol.secret_refs["contacts[1].secret"], "file:hook.secret");
        assert_eq!(carol.spec["contacts"][1]["secret"], "hook-secret-value");
        assert!(
            carol.spec["contacts"][0].get("number").is_none(),
            "no nulls"
        );
        assert_eq!(entries[4].secret_refs["key"], "${KEY}");
        assert_eq!(entries[0].secret_refs["signing_secret"], "${SLACK_SECRET}");
    }

    #[test]
    fn stored_objects_check_and_build_like_the_file() {
        let (config, refs, _dir) = load();
        let entries = entries(&config, &refs).unwrap();
        let doc = document(entries.iter().map(|e| (e.kind, e.id.as_str(), &e.spec)));
        let again = parse_document(doc).unwrap();
        let cat = build(&again, 7);
        assert_eq!(cat.version, 7);
        assert!(
            cat.api_tokens[0]
                .digest
                .ct_eq(&tocsin_domain::TokenDigest::of("token-0123456789abcdef"))
        );
        assert_eq!(
            cat.sources["prom"].configured_key.as_deref(),
            Some("key-0123456789abcdef")
        );
        assert_eq!(cat.users["carol"].contacts.len(), 2);
        assert_eq!(
            cat.providers
                .slack
                .as_ref()
                .unwrap()
                .signing_secret
                .as_deref(),
            Some("slack-secret")
        );
        assert_eq!(cat.policy("p").unwrap().levels.len(), 1);
    }

    #[test]
    fn a_broken_object_is_reported_at_its_key_path() {
        let doc = json!({"escalation_policies": [{"id": "p", "levels": [{"notify": ["user:nobody"], "escalate_after": "5m"}]}]});
        let problems = parse_document(doc).unwrap_err();
        assert_eq!(
            problems[0].path,
            "escalation_policies[0].levels[0].notify[0]"
        );
    }

    #[test]
    fn export_prints_references_never_secrets() {
        let (config, refs, _dir) = load();
        let mut made_up = Vec::new();
        let mut texts = Vec::new();
        for e in entries(&config, &refs).unwrap() {
            let (spec, extra) = exported(e.kind, &e.id, &e.spec, &e.secret_refs);
            made_up.extend(extra);
            texts.push(spec.to_string());
            if e.kind == "users" {
                assert_eq!(spec["contacts"][1]["secret_file"], "hook.secret");
                assert!(spec["contacts"][1].get("secret").is_none());
            }
            if e.kind == "api_tokens" {
                assert_eq!(
                    spec,
                    json!({"name": "ci", "role": "admin", "token": "${TOKEN}"})
                );
            }
        }
        let text = texts.join("\n");
        for secret in [
            "hook-secret-value",
            "slack-secret",
            "key-0123456789abcdef",
            "token-0123",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("${KEY}") && text.contains("${SLACK_SECRET}"));
        assert!(
            made_up.is_empty(),
            "every secret came from the file: {made_up:?}"
        );
        // A secret set through the API gets a variable named after it.
        let spec = json!({"id": "dave", "contacts": [{"id": "hook", "type": "webhook", "url": "u", "secret": "s3cret"}]});
        let (out, extra) = exported("users", "dave", &spec, &BTreeMap::new());
        assert_eq!(
            out["contacts"][0]["secret"],
            "${TOCSIN_USERS_DAVE_CONTACTS_0_SECRET}"
        );
        assert_eq!(extra, ["TOCSIN_USERS_DAVE_CONTACTS_0_SECRET"]);
    }

    #[test]
    fn redaction_leaves_out_every_secret() {
        let (config, refs, _dir) = load();
        for mut e in entries(&config, &refs).unwrap() {
            redact(e.kind, &e.id, &mut e.spec);
            let text = e.spec.to_string();
            for secret in ["hook-secret-value", "slack-secret", "key-0123456789abcdef"] {
                assert!(!text.contains(secret), "{} {}: {text}", e.kind, e.id);
            }
            if e.kind == "users" {
                assert_eq!(e.spec["contacts"][1]["url"], "https://example.com/h");
            }
        }
    }
}
