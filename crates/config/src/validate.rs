//! Checks that need the whole file: ids, references, formats.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use chrono::{NaiveDateTime, NaiveTime, Weekday};

use crate::Problem;
use crate::model::*;

/// Shortest secret accepted for source keys and API tokens (128 bits as hex).
pub const MIN_SECRET_LEN: usize = 16;

pub(crate) fn validate(c: &Config) -> Result<(), Vec<Problem>> {
    let mut v = Validator::default();
    v.check(c);
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(v.problems)
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem::new(path, msg));
    }

    fn ids<'a>(&mut self, kind: &str, ids: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for (i, id) in ids.enumerate() {
            let path = format!("{kind}[{i}].id");
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                self.err(
                    &path,
                    format!("`{id}` is not a valid id; use letters, digits, `-`, `_` and `.`"),
                );
            }
            if !seen.insert(id.to_owned()) {
                self.err(
                    path,
                    format!("duplicate id `{id}`; ids must be unique among {kind}"),
                );
            }
        }
        seen
    }

    fn reference(&mut self, path: String, kind: &str, id: &str, known: &BTreeSet<String>) {
        if !known.contains(id) {
            let list = if known.is_empty() {
                format!("none are defined under {kind}")
            } else {
                format!(
                    "expected one of: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            self.err(path, format!("unknown {kind} id `{id}`; {list}"));
        }
    }

    fn timezone(&mut self, path: String, tz: &str) {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            self.err(
                path,
                format!(
                    "`{tz}` is not an IANA time zone; expected a name like Europe/Berlin or UTC"
                ),
            );
        }
    }

    fn secret(&mut self, path: String, what: &str, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            self.err(
                path,
                format!(
                    "{what} is {} characters long; use at least {MIN_SECRET_LEN} random characters (for example the output of `openssl rand -hex 16`)",
                    value.len()
                ),
            );
        }
    }

    fn check(&mut self, c: &Config) {
        if let Some(l) = &c.server.listen
            && l.parse::<SocketAddr>().is_err()
        {
            self.err(
                "server.listen",
                format!("`{l}` is not a listen address; expected host:port such as 127.0.0.1:8080"),
            );
        }
        if let Some(u) = &c.server.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            self.err(
                "server.public_url",
                format!("`{u}` is not an http(s) URL; expected e.g. https://tocsin.example.com"),
            );
        }
        if let Some(tls) = &c.server.tls {
            if !tls.cert.contains("-----BEGIN CERTIFICATE-----") {
                self.err(
                    "server.tls.cert_file",
                    "expected a PEM certificate chain (a file starting with -----BEGIN CERTIFICATE-----)",
                );
            }
            if !(tls.key.contains("-----BEGIN") && tls.key.contains("PRIVATE KEY-----")) {
                self.err(
                    "server.tls.key_file",
                    "expected a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)",
                );
            }
        }
        if let Some(o) = &c.auth.oidc {
            if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
                self.err(
                    "auth.oidc.issuer",
                    format!(
                        "`{}` is not an http(s) URL; expected the provider's issuer, e.g. https://login.example.com",
                        o.issuer
                    ),
                );
            }
            if o.client_id.trim().is_empty() {
                self.err("auth.oidc.client_id", "must not be empty");
            }
            if o.client_secret
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
            {
                self.err(
                    "auth.oidc.client_secret_file",
                    "missing; give the client secret the provider issued, in a file (client_secret_file) or as client_secret: ${ENV}",
                );
            }
        }
        for (key, d) in [
            ("auth.session_idle", c.auth.session_idle),
            ("auth.session_lifetime", c.auth.session_lifetime),
        ] {
            if d.is_some_and(|d| d.as_secs() < 5) {
                self.err(key, "must be at least 5s");
            }
        }
        if let Some(u) = &c.database.url
            && !(u.starts_with("sqlite:")
                || u.starts_with("postgres:")
                || u.starts_with("postgresql:"))
        {
            self.err(
                "database.url",
                format!("`{}` is not a database URL; expected sqlite://FILE or postgres://USER:PASS@HOST/DB", redact_url(u)),
            );
        }
        if c.server.body_limit_bytes == Some(0) {
            self.err("server.body_limit_bytes", "must be greater than 0");
        }

        let mut token_names = BTreeSet::new();
        for (i, t) in c.api_tokens.iter().enumerate() {
            if !token_names.insert(t.name.clone()) {
                self.err(
                    format!("api_tokens[{i}].name"),
                    format!("duplicate token name `{}`", t.name),
                );
            }
            match (&t.token, &t.token_sha256) {
                (Some(token), None) => {
                    self.secret(format!("api_tokens[{i}].token"), "the token", token)
                }
                (None, Some(h)) => {
                    if tocsin_domain::TokenDigest::from_hex(h).is_none() {
                        self.err(
                            format!("api_tokens[{i}].token_sha256"),
                            "expected the SHA-256 of the token as 64 hex digits (`printf %s \"$TOKEN\" | sha256sum`)",
                        );
                    }
                }
                (Some(_), Some(_)) => self.err(
                    format!("api_tokens[{i}]"),
                    "set either `token` or `token_sha256`, not both",
                ),
                (None, None) => self.err(
                    format!("api_tokens[{i}].token"),
                    "missing; set `token` (for example \"${TOCSIN_API_TOKEN}\"), `token_file` or `token_sha256`",
                ),
            }
        }

        let teams = self.ids("teams", c.teams.iter().map(|t| t.id.as_str()));
        let users = self.ids("users", c.users.iter().map(|u| u.id.as_str()));
        let hours = self.ids(
            "support_hours",
            c.support_hours.iter().map(|s| s.id.as_str()),
        );
        let schedules = self.ids("schedules", c.schedules.iter().map(|s| s.id.as_str()));
        let policies = self.ids(
            "escalation_policies",
            c.escalation_policies.iter().map(|p| p.id.as_str()),
        );
        let services = self.ids("services", c.services.iter().map(|s| s.id.as_str()));
        self.ids("sources", c.sources.iter().map(|s| s.id.as_str()));
        self.ids("heartbeats", c.heartbeats.iter().map(|h| h.id.as_str()));

        for (i, t) in c.api_tokens.iter().enumerate() {
            let Some(user) = &t.user else { continue };
            self.reference(format!("api_tokens[{i}].user"), "users", user, &users);
            if let Some(u) = c.users.iter().find(|u| &u.id == user)
                && !t.role.at_most(u.role)
            {
                self.err(
                    format!("api_tokens[{i}].role"),
                    format!(
                        "the token acts as user `{user}`, whose role is {}; a token's role may be no higher than its user's",
                        u.role.as_str()
                    ),
                );
            }
        }

        for (i, u) in c.users.iter().enumerate() {
            for (j, t) in u.teams.iter().enumerate() {
                self.reference(format!("users[{i}].teams[{j}]"), "teams", t, &teams);
            }
            if let Some(tz) = &u.timezone {
                self.timezone(format!("users[{i}].timezone"), tz);
            }
            let mut contacts = BTreeSet::new();
            for (j, ct) in u.contacts.iter().enumerate() {
                if !contacts.insert(ct.id.clone()) {
                    self.err(
                        format!("users[{i}].contacts[{j}].id"),
                        format!("duplicate contact id `{}` for user `{}`", ct.id, u.id),
                    );
                }
                if ct.value().is_none_or(str::is_empty) {
                    self.err(
                        format!("users[{i}].contacts[{j}]"),
                        format!(
                            "a contact of type {:?} needs `{}`",
                            ct.kind,
                            ct.kind.required_field()
                        )
                        .to_lowercase(),
                    );
                }
            }
            for (prio, rules) in [("high", &u.notify.high), ("low", &u.notify.low)] {
                for (j, r) in rules.iter().enumerate() {
                    if !contacts.contains(&r.contact) {
                        self.reference(
                            format!("users[{i}].notify.{prio}[{j}].contact"),
                            "contacts of this user",
                            &r.contact,
                            &contacts,
                        );
                    }
                }
            }
        }

        for (i, h) in c.support_hours.iter().enumerate() {
            self.timezone(format!("support_hours[{i}].timezone"), &h.timezone);
            if h.weekly.is_empty() {
                self.err(
                    format!("support_hours[{i}].weekly"),
                    "needs at least one `days: HH:MM-HH:MM` entry",
                );
            }
            for (days, window) in &h.weekly {
                let path = format!("support_hours[{i}].weekly.{days}");
                if let Err(e) = parse_days(days) {
                    self.err(&path, e);
                }
                if let Err(e) = parse_window(window) {
                    self.err(path, e);
                }
            }
        }

        for (i, s) in c.schedules.iter().enumerate() {
            self.timezone(format!("schedules[{i}].timezone"), &s.timezone);
            if let Some(t) = &s.team {
                self.reference(format!("schedules[{i}].team"), "teams", t, &teams);
            }
            for (j, l) in s.layers.iter().enumerate() {
                let p = format!("schedules[{i}].layers[{j}]");
                if l.users.is_empty() {
                    self.err(format!("{p}.users"), "a layer needs at least one user");
                }
                for (k, u) in l.users.iter().enumerate() {
                    self.reference(format!("{p}.users[{k}]"), "users", u, &users);
                }
                if l.rotation.as_secs() == 0 {
                    self.err(
                        format!("{p}.rotation"),
                        "must be longer than 0 (e.g. 12h, 1d, 1w)",
                    );
                }
                if let Err(e) = parse_local_datetime(&l.handoff) {
                    self.err(format!("{p}.handoff"), e);
                }
                for (k, r) in l.restrict.iter().enumerate() {
                    let rp = format!("{p}.restrict[{k}]");
                    if let Some(d) = &r.days
                        && let Err(e) = parse_days(d)
                    {
                        self.err(format!("{rp}.days"), e);
                    }
                    if let Err(e) = parse_hhmm(&r.from) {
                        self.err(format!("{rp}.from"), e);
                    }
                    if let Err(e) = parse_hhmm(&r.to) {
                        self.err(format!("{rp}.to"), e);
                    }
                }
            }
            for (j, o) in s.overrides.iter().enumerate() {
                let p = format!("schedules[{i}].overrides[{j}]");
                self.reference(format!("{p}.user"), "users", &o.user, &users);
                match (parse_local_datetime(&o.from), parse_local_datetime(&o.to)) {
                    (Ok(from), Ok(to)) if from >= to => {
                        self.err(format!("{p}.to"), "must be after `from`");
                    }
                    (Err(e), _) => self.err(format!("{p}.from"), e),
                    (_, Err(e)) => self.err(format!("{p}.to"), e),
                    _ => {}
                }
            }
        }

        let mut routing_keys: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in c.escalation_policies.iter().enumerate() {
            if let Some(t) = &p.team {
                self.reference(format!("escalation_policies[{i}].team"), "teams", t, &teams);
            }
            if let Some(k) = &p.routing_key
                && let Some(prev) = routing_keys.insert(k, i)
            {
                self.err(
                    format!("escalation_policies[{i}].routing_key"),
                    format!("routing key `{k}` is already used by escalation_policies[{prev}]"),
                );
            }
            if p.levels.is_empty() {
                self.err(
                    format!("escalation_policies[{i}].levels"),
                    "needs at least one level",
                );
            }
            for (j, l) in p.levels.iter().enumerate() {
                if l.notify.is_empty() {
                    self.err(
                        format!("escalation_policies[{i}].levels[{j}].notify"),
                        "needs at least one target (user:ID or schedule:ID)",
                    );
                }
                for (k, target) in l.notify.iter().enumerate() {
                    let path = format!("escalation_policies[{i}].levels[{j}].notify[{k}]");
                    match target.split_once(':') {
                        Some(("user", id)) => self.reference(path, "users", id, &users),
                        Some(("schedule", id)) => self.reference(path, "schedules", id, &schedules),
                        _ => self.err(
                            path,
                            format!("`{target}` is not a target; expected user:ID or schedule:ID"),
                        ),
                    }
                }
            }
        }

        for (i, s) in c.services.iter().enumerate() {
            if let Some(p) = &s.escalation_policy {
                self.reference(
                    format!("services[{i}].escalation_policy"),
                    "escalation_policies",
                    p,
                    &policies,
                );
            }
            if let Some(t) = &s.team {
                self.reference(format!("services[{i}].team"), "teams", t, &teams);
            }
        }

        let mut keys: BTreeMap<&str, String> = BTreeMap::new();
        for (i, s) in c.sources.iter().enumerate() {
            let p = format!("sources[{i}]");
            if let Some(t) = &s.team {
                self.reference(format!("{p}.team"), "teams", t, &teams);
            }
            self.reference(
                format!("{p}.escalation_policy"),
                "escalation_policies",
                &s.escalation_policy,
                &policies,
            );
            if let Some(svc) = &s.service {
                self.reference(format!("{p}.service"), "services", svc, &services);
            }
            if let Some(h) = &s.support_hours {
                self.reference(format!("{p}.support_hours"), "support_hours", h, &hours);
            }
            if let Some(k) = &s.key {
                self.secret(format!("{p}.key"), "the key", k);
                if let Some(prev) = keys.insert(k, p.clone()) {
                    self.err(
                        format!("{p}.key"),
                        format!(
                            "the same key is already used by {prev}; every source needs its own"
                        ),
                    );
                }
            }
            if let Some(t) = &s.templates
                && let Err(e) =
                    tocsin_wire::Templates::compile(t.summary.as_deref(), t.details.as_deref())
            {
                let (which, msg) = e.0.split_once(": ").unwrap_or(("summary", e.0.as_str()));
                self.err(
                    format!("{p}.templates.{which}"),
                    format!("template does not compile: {msg}"),
                );
            }
        }
        for (i, h) in c.heartbeats.iter().enumerate() {
            let p = format!("heartbeats[{i}]");
            if let Some(t) = &h.team {
                self.reference(format!("{p}.team"), "teams", t, &teams);
            }
            self.reference(
                format!("{p}.escalation_policy"),
                "escalation_policies",
                &h.escalation_policy,
                &policies,
            );
            if let Some(svc) = &h.service {
                self.reference(format!("{p}.service"), "services", svc, &services);
            }
            if h.interval.as_secs() == 0 {
                self.err(format!("{p}.interval"), "must be longer than 0 (e.g. 1m)");
            }
            if let Some(k) = &h.key {
                self.secret(format!("{p}.key"), "the key", k);
                if let Some(prev) = keys.insert(k, p.clone()) {
                    self.err(format!("{p}.key"), format!("the same key is already used by {prev}; every source and heartbeat needs its own"));
                }
            }
        }
        if c.notifications
            .action_link_ttl
            .is_some_and(|d| d.as_secs() == 0)
        {
            self.err(
                "notifications.action_link_ttl",
                "must be longer than 0 (e.g. 24h)",
            );
        }
        if c.notifications
            .bundle_window
            .is_some_and(|d| d.as_secs() > 3600)
        {
            self.err(
                "notifications.bundle_window",
                "must be at most 1h: longer would hold pages back too long (0s turns bundling off)",
            );
        }
        let retry = &c.notifications.retry;
        if retry.attempts.is_some_and(|n| n == 0 || n > 100) {
            self.err(
                "notifications.retry.attempts",
                "must be from 1 (no retry) to 100",
            );
        }
        if retry.backoff.is_some_and(|d| d.as_secs() == 0) {
            self.err(
                "notifications.retry.backoff",
                "must be at least 1s (e.g. 10s)",
            );
        }
        if retry.max_backoff() < retry.backoff() {
            self.err(
                "notifications.retry.max_backoff",
                format!(
                    "must not be shorter than notifications.retry.backoff ({})",
                    retry.backoff()
                ),
            );
        }
        for (i, sv) in c.services.iter().enumerate() {
            for (j, a) in sv.announce.iter().enumerate() {
                let path = format!("services[{i}].announce[{j}]");
                match (&a.slack_webhook_url, &a.webhook_url) {
                    (Some(_), Some(_)) | (None, None) => self.err(
                        path,
                        "give exactly one of slack_webhook_url (a Slack incoming webhook) or webhook_url",
                    ),
                    (Some(u), None) | (None, Some(u))
                        if !(u.starts_with("https://") || u.starts_with("http://")) =>
                    {
                        self.err(path, "the URL must start with https:// (or http://)")
                    }
                    (Some(_), None) if a.secret.is_some() => self.err(
                        format!("{path}.secret"),
                        "only a webhook_url is signed; Slack webhooks take no secret",
                    ),
                    _ => {}
                }
            }
        }
        if let Some(sp) = &c.status_page {
            if let Some(tz) = &sp.timezone {
                self.timezone("status_page.timezone".into(), tz);
            }
            if !sp.charts.is_empty() && sp.prometheus_url.is_none() {
                self.err(
                    "status_page.prometheus_url",
                    "charts need the Prometheus server they query, e.g. http://127.0.0.1:9090",
                );
            }
            if let Some(u) = &sp.prometheus_url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                self.err(
                    "status_page.prometheus_url",
                    format!("`{u}` is not an http(s) URL"),
                );
            }
            for (i, ch) in sp.charts.iter().enumerate() {
                self.reference(
                    format!("status_page.charts[{i}].service"),
                    "services",
                    &ch.service,
                    &services,
                );
                let range = ch.range.map_or(86_400, |r| r.as_secs());
                if range == 0 {
                    self.err(
                        format!("status_page.charts[{i}].range"),
                        "must be longer than 0s",
                    );
                }
                if let Some(step) = ch.step {
                    if step.as_secs() == 0 {
                        self.err(
                            format!("status_page.charts[{i}].step"),
                            "must be at least 1s",
                        );
                    } else if range / step.as_secs() > 11_000 {
                        self.err(
                            format!("status_page.charts[{i}].step"),
                            "gives more than 11,000 points (Prometheus' limit); make it longer",
                        );
                    }
                }
            }
        }
    }
}

/// Hide the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `mon-fri`, `sat,sun`, `mon`, `fri-mon` (wrapping) → weekdays.
pub fn parse_days(spec: &str) -> Result<Vec<Weekday>, String> {
    let day = |s: &str| -> Result<Weekday, String> {
        match s.trim().to_ascii_lowercase().get(..3) {
            Some("mon") => Ok(Weekday::Mon),
            Some("tue") => Ok(Weekday::Tue),
            Some("wed") => Ok(Weekday::Wed),
            Some("thu") => Ok(Weekday::Thu),
            Some("fri") => Ok(Weekday::Fri),
            Some("sat") => Ok(Weekday::Sat),
            Some("sun") => Ok(Weekday::Sun),
            _ => Err(format!(
                "`{spec}` is not a day list; expected days like mon-fri, sat,sun or mon"
            )),
        }
    };
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (mut d, end) = (day(a)?, day(b)?);
                loop {
                    if !out.contains(&d) {
                        out.push(d);
                    }
                    if d == end {
                        break;
                    }
                    d = d.succ();
                }
            }
            None => {
                let d = day(part)?;
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    Ok(out)
}

/// `HH:MM` (24:00 allowed as end of day).
pub fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    if s.trim() == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("`{s}` is not a time of day; expected HH:MM such as 09:00"))
}

/// `HH:MM-HH:MM`.
pub fn parse_window(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| {
        format!("`{s}` is not a time window; expected HH:MM-HH:MM such as 09:00-18:00")
    })?;
    Ok((parse_hhmm(a)?, parse_hhmm(b)?))
}

/// A local wall-clock time, `YYYY-MM-DDTHH:MM` (seconds optional).
pub fn parse_local_datetime(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("`{s}` is not a local date and time; expected YYYY-MM-DDTHH:MM such as 2026-01-05T09:00"))
}
