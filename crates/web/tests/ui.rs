//! The web UI over real HTTP: signing in and out, sessions and their
//! expiry, rate limits, the setup link, CSRF and Origin checks, role
//! checks on forged forms, and the live alert stream. (What a browser
//! shows and does is tested in Chromium: `tests/browser`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use tocsin_app::signin::SessionPolicy;
use tocsin_store::Actor;

const CONFIG: &str = r#"
api_tokens:
  - {name: root, token: root-token-0123456789abcdef, role: admin}
teams:
  - {id: sre}
  - {id: db}
users:
  - {id: alice, name: Alice, email: Alice@Example.com, role: admin, teams: [sre]}
  - {id: bob, name: Bob, teams: [sre], contacts: [{id: mail, type: email, address: bob@example.com}], notify: {high: [{contact: mail, after: 0m}]}}
  - {id: dan, name: Dan, teams: [db]}
  - {id: olga, name: Olga, teams: [sre], role: observer}
escalation_policies:
  - {id: sre-pager, team: sre, levels: [{notify: ["user:bob"], escalate_after: 5m}]}
sources:
  - {id: prom, type: prometheus, team: sre, key: prom-key-0123456789abcdef01, escalation_policy: sre-pager}
"#;

const PASSWORD: &str = "correct horse battery";

/// A browser without JavaScript: keeps cookies, follows no redirects.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The value of the first hidden `_csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a CSRF field")
            + 20;
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(base: &str) -> Self {
        Browser {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all(SET_COOKIE) {
            let text = v.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, val) = pair.split_once('=').unwrap();
            assert!(attrs.contains("HttpOnly"), "{text}");
            assert!(attrs.contains("SameSite=Lax"), "{text}");
            if val.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page {
            status: res.status(),
            location: res
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(res).await
    }

    /// POST a form the way a browser on our own page does (with Origin).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, form, Some(&origin)).await
    }

    async fn post_from(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let res = req.send().await.unwrap();
        self.take(res).await
    }

    /// Sign in through the form; the page it lands on.
    async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("_csrf", &csrf),
                ("login", login),
                ("password", password),
                ("next", "/alerts"),
            ],
        )
        .await
    }
}

async fn start(
    ui: tocsin_web::ui::UiSettings,
) -> (String, tempfile::TempDir, Arc<tocsin_app::Application>) {
    let (base, dir, app) = common::serve_app(CONFIG, vec![], ui).await;
    let op = Actor::new("operator", "test");
    for u in ["alice", "bob", "dan", "olga"] {
        app.set_password(u, PASSWORD, None, &op).await.unwrap();
    }
    (base, dir, app)
}

/// Post one Alertmanager alert; its id.
async fn fire(base: &str, name: &str) -> i64 {
    let body = serde_json::json!({
        "version": "4", "status": "firing", "receiver": "tocsin",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
        "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": name, "severity": "critical"},
            "annotations": {"summary": format!("{name} is failing")},
            "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom", "fingerprint": format!("fp-{name}")}]
    });
    let res = reqwest::Client::new()
        .post(format!(
            "{base}/api/v1/events/prometheus/prom-key-0123456789abcdef01"
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let v: serde_json::Value = res.json().await.unwrap();
    v["alerts"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{v}"))
}

async fn status_of(base: &str, id: i64) -> String {
    let (s, v) = common::call(
        &reqwest::Client::new(),
        base,
        reqwest::Method::GET,
        &format!("/api/v1/alerts/{id}"),
        "root-token-0123456789abcdef",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    v.get("alert").unwrap_or(&v)["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_the_sign_in_page() {
    let (base, _dir, _app) = start(Default::default()).await;
    let mut b = Browser::new(&base);
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/login"));
    let list = b.get("/alerts?status=pending").await;
    assert_eq!(list.status, StatusCode::SEE_OTHER);
    let to = list.location.unwrap();
    assert!(to.starts_with("/login?"), "{to}");
    assert!(to.contains("next=%2Falerts%3Fstatus%3Dpending"), "{to}");
    let login = b.get(&to).await;
    assert!(login.body.contains("Sign in to continue."));
    // The page itself is locked down.
    let res = reqwest::get(format!("{base}/login")).await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(res.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn sign_in_with_id_or_email_and_out_again() {
    let (base, _dir, _app) = start(Default::default()).await;
    let mut b = Browser::new(&base);
    let wrong = b.sign_in("alice", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("wrong user or password"),
        "{}",
        wrong.body
    );
    assert!(!b.cookies.contains_key("tocsin_session"));
    let unknown = b.sign_in("nobody", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(
        unknown.body.contains("wrong user or password"),
        "the same answer for an unknown user"
    );

    let ok = b.sign_in("alice@example.COM", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/alerts"));
    let list = b.get("/alerts").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("<h1>Alerts</h1>"));
    assert!(list.body.contains("Alice"), "the user's name in the header");

    // The profile lists the session; signing out ends it for good.
    let profile = b.get("/profile").await;
    assert!(profile.body.contains("(this one)"), "{}", profile.body);
    let kept = b.cookies.clone();
    let out = b.post("/logout", &[("_csrf", &profile.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/login?why=bye"));
    assert!(
        !b.cookies.contains_key("tocsin_session"),
        "the cookie is cleared"
    );
    b.cookies = kept;
    let after = b.get("/alerts").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn an_expired_session_sends_the_browser_to_sign_in_again() {
    let ui = tocsin_web::ui::UiSettings {
        sessions: SessionPolicy {
            idle: chrono::TimeDelta::hours(1),
            lifetime: chrono::TimeDelta::seconds(1),
        },
        ..Default::default()
    };
    let (base, _dir, _app) = start(ui).await;
    let mut b = Browser::new(&base);
    assert_eq!(
        b.sign_in("bob", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.get("/alerts").await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let gone = b.get("/alerts").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    let to = gone.location.unwrap();
    assert!(to.contains("why=expired"), "{to}");
    assert!(b.get(&to).await.body.contains("Your session expired."));
}

#[tokio::test]
async fn sessions_can_be_ended_from_another_browser_and_a_new_password_ends_them_all() {
    let (base, _dir, _app) = start(Default::default()).await;
    let mut phone = Browser::new(&base);
    let mut laptop = Browser::new(&base);
    phone.sign_in("bob", PASSWORD).await;
    laptop.sign_in("bob", PASSWORD).await;
    let profile = laptop.get("/profile").await;
    let ids: Vec<&str> = profile
        .body
        .match_indices("/profile/sessions/ses_")
        .map(|(i, _)| &profile.body[i + 18..i + 18 + 20])
        .collect();
    assert_eq!(ids.len(), 2, "both sessions listed");
    // End the session that is not this one: the phone is signed out.
    let other = profile
        .body
        .split("<tr>")
        .find(|row| row.contains("/profile/sessions/") && !row.contains("(this one)"))
        .unwrap();
    let at = other.find("/profile/sessions/").unwrap();
    let path = &other[at..at + other[at..].find('"').unwrap()];
    let ended = laptop.post(path, &[("_csrf", &profile.csrf())]).await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/alerts").await.status, StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/alerts").await.status, StatusCode::OK);

    // A password change keeps this session and ends every other.
    let mut tablet = Browser::new(&base);
    tablet.sign_in("bob", PASSWORD).await;
    let csrf = laptop.get("/profile").await.csrf();
    let short = laptop
        .post(
            "/profile/password",
            &[
                ("_csrf", &csrf),
                ("current", PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("too short"), "{}", short.body);
    let changed = laptop
        .post(
            "/profile/password",
            &[
                ("_csrf", &csrf),
                ("current", PASSWORD),
                ("new", "a much better passphrase"),
                ("confirm", "a much better passphrase"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert_eq!(laptop.get("/alerts").await.status, StatusCode::OK);
    assert_eq!(tablet.get("/alerts").await.status, StatusCode::SEE_OTHER);
    let mut fresh = Browser::new(&base);
    assert_eq!(
        fresh.sign_in("bob", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fresh
            .sign_in("bob", "a much better passphrase")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_account() {
    let (base, _dir, _app) = start(Default::default()).await;
    let mut b = Browser::new(&base);
    for _ in 0..5 {
        assert_eq!(
            b.sign_in("dan", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = b.sign_in("dan", PASSWORD).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(
        limited.body.contains("too many failed sign-ins"),
        "{}",
        limited.body
    );
    // Another account from the same address is not locked by dan's.
    assert_eq!(
        b.sign_in("bob", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address() {
    let (base, _dir, _app) = start(Default::default()).await;
    let mut b = Browser::new(&base);
    // Twenty guesses spread over accounts that do not exist.
    for i in 0..20 {
        let who = format!("ghost{i}");
        assert_eq!(
            b.sign_in(&who, "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        b.sign_in("bob", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address waits"
    );
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_change_nothing() {
    let (base, _dir, _app) = start(Default::default()).await;
    let id = fire(&base, "CsrfCheck").await;
    let mut b = Browser::new(&base);
    b.sign_in("bob", PASSWORD).await;
    let page = b.get(&format!("/alerts/{id}")).await;
    assert!(page.body.contains("id=\"accept\""), "bob may accept");
    let csrf = page.csrf();
    let path = format!("/alerts/{id}/accept");

    let none = b.post(&path, &[]).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert!(none.body.contains("security token"), "{}", none.body);
    let stale = b.post(&path, &[("_csrf", "0123")]).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    let elsewhere = b
        .post_from(&path, &[("_csrf", &csrf)], Some("https://evil.example"))
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    assert!(
        elsewhere.body.contains("another site"),
        "{}",
        elsewhere.body
    );
    // Another session's token is not this one's.
    let mut other = Browser::new(&base);
    other.sign_in("alice", PASSWORD).await;
    let theirs = other.get("/alerts").await.csrf();
    assert_eq!(
        b.post(&path, &[("_csrf", &theirs)]).await.status,
        StatusCode::FORBIDDEN
    );
    // The sign-in form has its own token too.
    let mut c = Browser::new(&base);
    c.get("/login").await;
    let login = c
        .post("/login", &[("login", "bob"), ("password", PASSWORD)])
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&base, id).await, "pending", "nothing changed");

    let ok = b.post(&path, &[("_csrf", &csrf)]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&base, id).await, "accepted");
}

#[tokio::test]
async fn roles_hold_in_the_ui_an_observer_sees_no_buttons_and_a_forged_accept_is_403() {
    let (base, _dir, _app) = start(Default::default()).await;
    let id = fire(&base, "RoleCheck").await;
    let mut olga = Browser::new(&base);
    olga.sign_in("olga", PASSWORD).await;
    let page = olga.get(&format!("/alerts/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("id=\"accept\""),
        "no accept button for an observer"
    );
    assert!(!page.body.contains("/comment\""), "no comment form");
    let list = olga.get("/alerts").await;
    assert!(!list.body.contains("value=\"accept\""), "no bulk buttons");
    let csrf = page.csrf();
    let forged = olga
        .post(&format!("/alerts/{id}/accept"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.body.contains("alerts.act"),
        "names the permission: {}",
        forged.body
    );
    let bulk = olga
        .post(
            "/alerts/bulk",
            &[
                ("_csrf", &csrf),
                ("action", "resolve"),
                ("id", &id.to_string()),
            ],
        )
        .await;
    assert_eq!(bulk.status, StatusCode::FORBIDDEN);
    // Dan is a responder of another team.
    let mut dan = Browser::new(&base);
    dan.sign_in("dan", PASSWORD).await;
    let page = dan.get(&format!("/alerts/{id}")).await;
    assert!(!page.body.contains("id=\"accept\""));
    let forged = dan
        .post(&format!("/alerts/{id}/resolve"), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&base, id).await, "pending", "nothing changed");
}

#[tokio::test]
async fn bulk_accept_and_resolve_and_the_alert_page_actions() {
    let (base, _dir, _app) = start(Default::default()).await;
    let a = fire(&base, "BulkOne").await;
    let b2 = fire(&base, "BulkTwo").await;
    let mut b = Browser::new(&base);
    b.sign_in("bob", PASSWORD).await;
    let list = b.get("/alerts").await;
    assert!(list.body.contains("BulkOne is failing") && list.body.contains("BulkTwo is failing"));
    assert!(
        list.body.contains("data-count=\"pending\">2<"),
        "counts per status"
    );
    let csrf = list.csrf();
    let done = b
        .post(
            "/alerts/bulk",
            &[
                ("_csrf", &csrf),
                ("back", "status=pending"),
                ("action", "accept"),
                ("id", &a.to_string()),
                ("id", &b2.to_string()),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.location.as_deref(),
        Some("/alerts?status=pending&done=accept")
    );
    assert_eq!(status_of(&base, a).await, "accepted");
    assert_eq!(status_of(&base, b2).await, "accepted");
    let filtered = b
        .get("/alerts?status=accepted&source=prom&severity=&service=")
        .await;
    assert!(
        filtered.body.contains("BulkOne"),
        "empty filter fields are no filter"
    );
    let pending = b.get("/alerts?status=pending").await;
    assert!(!pending.body.contains("BulkOne"));

    // The alert page: comment, un-accept, reassign, resolve.
    let page = b.get(&format!("/alerts/{a}")).await;
    let csrf = page.csrf();
    for (action, form) in [
        ("comment", vec![("text", "looking at it")]),
        ("unaccept", vec![]),
        ("reassign", vec![("user", "alice")]),
        ("resolve", vec![]),
    ] {
        let mut f = vec![("_csrf", csrf.as_str())];
        f.extend(form);
        let r = b.post(&format!("/alerts/{a}/{action}"), &f).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}: {}", r.body);
    }
    let page = b.get(&format!("/alerts/{a}")).await;
    assert!(page.body.contains("looking at it"));
    assert!(
        page.body.contains("user:bob"),
        "actions are bob's on the timeline"
    );
    assert_eq!(status_of(&base, a).await, "resolved");
    let (_, v) = common::call(
        &reqwest::Client::new(),
        &base,
        reqwest::Method::GET,
        "/api/v1/audit?kind=alert",
        "root-token-0123456789abcdef",
        None,
    )
    .await;
    let channels: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["channel"].as_str().unwrap())
        .collect();
    assert!(
        channels.iter().all(|c| *c == "web"),
        "audited as the web UI: {channels:?}"
    );
}

#[tokio::test]
async fn the_setup_link_sets_the_first_admin_once() {
    let (base, _dir, app) = common::serve_app(CONFIG, vec![], Default::default()).await;
    let secret = app
        .setup_link(false)
        .await
        .unwrap()
        .expect("no admin can sign in yet");
    let mut b = Browser::new(&base);
    let page = b.get(&format!("/setup/{secret}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("value=\"alice\""),
        "admins to choose from"
    );
    assert!(!page.body.contains("value=\"bob\""), "only admins");
    let csrf = page.csrf();
    let path = format!("/setup/{secret}");
    let not_admin = b
        .post(
            &path,
            &[
                ("_csrf", &csrf),
                ("user", "bob"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(not_admin.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The form comes back with a fresh token.
    let csrf = not_admin.csrf();
    let done = b
        .post(
            &path,
            &[
                ("_csrf", &csrf),
                ("user", "alice"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(b.get("/alerts").await.status, StatusCode::OK, "signed in");
    let again = Browser::new(&base).get(&path).await;
    assert_eq!(again.status, StatusCode::GONE, "used once");
    assert!(
        app.setup_link(false).await.unwrap().is_none(),
        "an admin can sign in now"
    );
    assert_eq!(
        Browser::new(&base).sign_in("alice", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_live_stream_sends_a_new_alert_and_its_change_to_a_matching_list() {
    use futures_util::StreamExt;
    let (base, _dir, _app) = start(Default::default()).await;
    let mut b = Browser::new(&base);
    b.sign_in("bob", PASSWORD).await;
    let res = b
        .http
        .get(format!("{base}/alerts/live?status=pending"))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    let mut next_until = async |want: &str, seen: &mut String| {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !seen.contains(want) {
            let chunk = tokio::time::timeout_at(deadline, body.next())
                .await
                .unwrap_or_else(|_| panic!("no `{want}` within 10 s; got {seen}"))
                .unwrap()
                .unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    next_until("event: hello", &mut seen).await;
    let id = fire(&base, "LiveOne").await;
    next_until("LiveOne is failing", &mut seen).await;
    assert!(seen.contains(&format!("\"id\":{id}")), "{seen}");
    next_until("event: counts", &mut seen).await;
    // Accepted elsewhere (the API): it leaves the pending list.
    seen.clear();
    common::call(
        &reqwest::Client::new(),
        &base,
        reqwest::Method::POST,
        &format!("/api/v1/alerts/{id}/accept"),
        "root-token-0123456789abcdef",
        None,
    )
    .await;
    next_until("event: gone", &mut seen).await;
    assert!(seen.contains(&format!("{{\"id\":{id}}}")), "{seen}");

    // Without a session there is no stream.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/alerts/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn single_sign_on_maps_an_email_to_its_user_and_adds_unknown_ones_only_when_allowed() {
    let (_base, _dir, app) = start(Default::default()).await;
    let client = tocsin_app::signin::Client {
        address: "127.0.0.1".into(),
        user_agent: "test".into(),
    };
    let policy = SessionPolicy::default();
    let alice = app
        .sign_in_email("ALICE@example.com", false, &client, &policy)
        .await
        .unwrap();
    assert_eq!(
        alice.session.user, "alice",
        "emails match case-insensitively"
    );
    assert_eq!(alice.session.method, "oidc");
    let refused = app
        .sign_in_email("zed@example.com", false, &client, &policy)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, tocsin_app::AppError::Forbidden(m) if m.contains("no Tocsin user has the email zed@example.com")),
        "{refused:?}"
    );
    assert!(
        !app.catalog.current().users.contains_key("zed"),
        "not created"
    );
    let zed = app
        .sign_in_email("zed@example.com", true, &client, &policy)
        .await
        .unwrap();
    let catalog = app.catalog.current();
    let u = catalog.users.get(&zed.session.user).unwrap();
    assert_eq!(
        u.role,
        tocsin_domain::Role::Observer,
        "an observer, nothing more"
    );
    assert_eq!(u.email.as_deref(), Some("zed@example.com"));
    // Signing in again finds the same user.
    let again = app
        .sign_in_email("zed@example.com", true, &client, &policy)
        .await
        .unwrap();
    assert_eq!(again.session.user, zed.session.user);
}

#[tokio::test]
async fn the_sign_on_callback_refuses_a_flow_it_did_not_start() {
    let ui = tocsin_web::ui::UiSettings {
        oidc: Some(tocsin_web::ui::OidcSettings {
            // Nobody listens there: the callback must refuse before asking.
            issuer: "http://127.0.0.1:9".into(),
            client_id: "tocsin".into(),
            client_secret: "secret".into(),
            scopes: vec!["email".into()],
            allow_unknown_users: false,
            label: "SSO".into(),
        }),
        ..Default::default()
    };
    let (base, _dir, _app) = start(ui).await;
    let mut b = Browser::new(&base);
    let login = b.get("/login").await;
    assert!(
        login.body.contains("/auth/oidc/start"),
        "the button is there"
    );
    let no_cookie = b.get("/auth/oidc/callback?code=abc&state=xyz").await;
    assert_eq!(no_cookie.status, StatusCode::BAD_REQUEST);
    assert!(
        no_cookie.body.contains("did not start here"),
        "{}",
        no_cookie.body
    );
    // A forged flow cookie (not signed with the nodes' key) is refused too.
    let flow = hex::encode(
        r#"{"state":"xyz","nonce":"n","verifier":"v","next":"/alerts","until":9999999999}"#,
    );
    b.cookies
        .insert("tocsin_oidc".into(), format!("{flow}.{}", "0".repeat(64)));
    let forged = b.get("/auth/oidc/callback?code=abc&state=xyz").await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    // The provider's refusal is shown as such.
    let denied = b
        .get("/auth/oidc/callback?error=access_denied&error_description=no")
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert!(denied.body.contains("access_denied"));
    // Starting with an unreachable provider is a clear 502, not a hang.
    let down = b.get("/auth/oidc/start").await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY, "{}", down.body);
    assert!(!b.cookies.contains_key("tocsin_session"));
}

#[tokio::test]
async fn an_idle_session_ends_and_cookies_are_secure_under_https() {
    let ui = tocsin_web::ui::UiSettings {
        sessions: SessionPolicy {
            idle: chrono::TimeDelta::seconds(1),
            lifetime: chrono::TimeDelta::days(1),
        },
        secure_cookies: true,
        ..Default::default()
    };
    let (base, _dir, _app) = start(ui).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(format!("{base}/login")).send().await.unwrap();
    let set = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.contains("; Secure"), "{set}");
    let mut b = Browser::new(&base);
    // The test client speaks plain HTTP, but the cookies say Secure.
    assert_eq!(
        b.sign_in("bob", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let idle = b.get("/alerts").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER);
    assert!(
        idle.location.unwrap().contains("why=expired"),
        "idle is expired too"
    );
}

#[tokio::test]
async fn a_user_edits_their_own_contact_methods_but_nothing_else() {
    let (base, _dir, app) = start(Default::default()).await;
    // A managed user (one from the file is read-only, here and in the API).
    let (s, _) = common::call(
        &reqwest::Client::new(),
        &base,
        reqwest::Method::POST,
        "/api/v1/users",
        "root-token-0123456789abcdef",
        Some(serde_json::json!({"id": "erin", "name": "Erin", "teams": ["sre"], "contacts": [{"id": "mail", "type": "email", "address": "erin@example.com"}], "notify": {"high": [{"contact": "mail", "after": "0m"}]}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    app.set_password("erin", PASSWORD, None, &Actor::new("operator", "test"))
        .await
        .unwrap();
    let mut b = Browser::new(&base);
    b.sign_in("erin", PASSWORD).await;
    let page = b.get("/catalog/users/erin").await;
    assert!(page.body.contains("<textarea"), "her own user is editable");
    let csrf = page.csrf();
    let mine = "id: erin\nname: Erin\nteams: [sre]\ncontacts:\n  - {id: mail, type: email, address: erin@example.org}\nnotify:\n  high: [{contact: mail, after: 0m}]\n";
    let saved = b
        .post(
            "/catalog/users/erin",
            &[("_csrf", &csrf), ("definition", mine)],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let u = app.catalog.current().users.get("erin").cloned().unwrap();
    assert_eq!(u.contacts[0].address, "erin@example.org");
    // Promoting herself is refused, naming why.
    let csrf = b.get("/catalog/users/erin").await.csrf();
    let promote = b
        .post(
            "/catalog/users/erin",
            &[
                ("_csrf", &csrf),
                ("definition", &format!("{mine}role: admin\n")),
            ],
        )
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN, "{}", promote.body);
    assert_eq!(
        app.catalog.current().users["erin"].role,
        tocsin_domain::Role::Responder
    );
    // Nobody else's user, and no other kind.
    assert!(!b.get("/catalog/users/bob").await.body.contains("<textarea"));
    assert!(!b.get("/catalog/teams/sre").await.body.contains("<textarea"));
    // Bad YAML is shown as such, with nothing saved.
    let csrf = b.get("/catalog/users/erin").await.csrf();
    let bad = b
        .post(
            "/catalog/users/erin",
            &[("_csrf", &csrf), ("definition", "id: [erin")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("not YAML"), "{}", bad.body);
}
