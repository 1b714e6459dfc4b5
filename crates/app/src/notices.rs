//! Messages that belong to no alert, and whom they go to:
//!
//! - status page subscribers (email with double opt-in, or a webhook),
//!   told of incidents opened, each public update, resolutions and public
//!   maintenance, optionally only for chosen services;
//! - each service's announcement channels (Slack or a webhook), told of
//!   every update of its incidents;
//! - handoff notices: a user who asks for them is told when a shift of
//!   theirs starts and ends, through the contacts of their LOW rules.
//!
//! Each becomes a row of the durable notice outbox (`Store::fan_out`,
//! `Store::queue_notices`), named by its event and recipient so that it is
//! queued once whoever queues it; the status worker sends them with retries.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;
use tocsin_config::Problem;
use tocsin_domain::links::{ct_str_eq, hmac_sha256_hex};
use tocsin_domain::{Catalog, Permission, Principal, Scope};
use tocsin_store::{Incident, IncidentEvent, MaintenanceWindow, NewNotice, Subscriber};

use crate::{AppError, Application};

/// `POST /api/v1/status/subscribers`: exactly one of `email` and
/// `webhook_url`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// Gets a confirmation link first (double opt-in).
    pub email: Option<String>,
    /// Gets an (unsigned) JSON POST of each event (admins only).
    pub webhook_url: Option<String>,
    /// Only these public services (default: all).
    #[serde(default)]
    pub services: Vec<String>,
}

/// What a confirm or unsubscribe link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Confirm,
    Unsubscribe,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Confirm => "confirm",
            LinkPurpose::Unsubscribe => "unsubscribe",
        }
    }
}

/// How often an unconfirmed address is sent its confirmation again.
const CONFIRM_EVERY: i64 = 10 * 60 * 1000;

fn invalid(path: &str, message: impl Into<String>) -> AppError {
    AppError::Invalid(vec![Problem::new(path, message)])
}

/// A plain check of an address: one `@`, a dot in the domain, no spaces.
fn email_ok(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.contains(char::is_whitespace)
        && !domain.contains('@')
        && e.len() <= 254
}

impl Application {
    fn link_key(&self) -> String {
        self.catalogs.current().secrets.link_secret.clone()
    }

    /// The token of a subscriber's confirm or unsubscribe link: its id and
    /// an HMAC of it with the link key every node shares.
    pub fn subscriber_token(&self, id: i64, purpose: LinkPurpose) -> String {
        let mac = hmac_sha256_hex(
            self.link_key().as_bytes(),
            format!("status-subscriber:{}:{id}", purpose.as_str()).as_bytes(),
        );
        format!("{id}-{}", &mac[..32])
    }

    /// The subscriber a link token names, if its HMAC is right.
    fn subscriber_of(&self, token: &str, purpose: LinkPurpose) -> Option<i64> {
        let (id, _) = token.split_once('-')?;
        let id: i64 = id.parse().ok()?;
        ct_str_eq(&self.subscriber_token(id, purpose), token).then_some(id)
    }

    /// Subscribe to the status page. An email address is sent a
    /// confirmation link (at most every ten minutes); a webhook needs role
    /// admin (Tocsin will POST to it) and is live at once.
    pub async fn subscribe(
        &self,
        p: Option<&Principal>,
        r: &SubscribeRequest,
        public_url: &str,
    ) -> Result<(Subscriber, bool), AppError> {
        let c = self.catalog.current();
        for (i, s) in r.services.iter().enumerate() {
            if !c.services.get(s).is_some_and(|x| x.public) {
                return Err(invalid(
                    &format!("services[{i}]"),
                    format!("`{s}` is not a service on the status page"),
                ));
            }
        }
        let services: Vec<String> = r
            .services
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let now = self.now();
        match (&r.email, &r.webhook_url) {
            (Some(e), None) => {
                let e = e.trim().to_lowercase();
                if !email_ok(&e) {
                    return Err(invalid("email", format!("`{e}` is not an email address")));
                }
                let by = p.map_or_else(|| "status page".to_owned(), |p| p.actor_name());
                let (s, new) = self
                    .store
                    .subscribe("email", &e, &services, false, &by, now)
                    .await?;
                if s.confirmed_at.is_none() {
                    let link = format!(
                        "{public_url}/status/subscriptions/{}/confirm",
                        self.subscriber_token(s.id, LinkPurpose::Confirm)
                    );
                    let title = &self.status_title();
                    let notice = NewNotice {
                        dedup: format!(
                            "confirm:{}:{}",
                            s.id,
                            now.timestamp_millis() / CONFIRM_EVERY
                        ),
                        kind: "confirm".into(),
                        channel: "email".into(),
                        address: e.clone(),
                        subscriber_id: None,
                        subject: format!("Confirm your subscription to {title}"),
                        body: format!(
                            "Someone (we hope you) asked to be told about incidents and maintenance on {title}.\n\nTo confirm, open this link and press the button:\n{link}\n\nIf it was not you, ignore this message: nothing is sent without the confirmation.\n"
                        ),
                        payload: json!({}),
                        due_at: now,
                    };
                    self.store.queue_notices(&[notice], now).await?;
                }
                Ok((s, new))
            }
            (None, Some(u)) => {
                let Some(p) = p else {
                    return Err(AppError::Unauthorized(
                        "a webhook subscription needs an API token with role admin".into(),
                    ));
                };
                p.check(
                    Permission::EditCatalog,
                    &Scope::Global,
                    "the status page's webhook subscribers",
                )
                .map_err(|e| AppError::Forbidden(e.message))?;
                if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2000 {
                    return Err(invalid("webhook_url", "must be an http(s) URL"));
                }
                let (s, new) = self
                    .store
                    .subscribe("webhook", u, &services, true, &p.actor_name(), now)
                    .await?;
                Ok((s, new))
            }
            _ => Err(invalid("", "give exactly one of `email` or `webhook_url`")),
        }
    }

    /// The subscriber a link names (for the confirmation page).
    pub async fn subscriber_by_link(
        &self,
        token: &str,
        purpose: LinkPurpose,
    ) -> Result<Subscriber, AppError> {
        let gone = || {
            AppError::NotFound("this link is not valid (it may have been mistyped or cut)".into())
        };
        let id = self.subscriber_of(token, purpose).ok_or_else(gone)?;
        self.store.subscriber(id).await?.ok_or_else(gone)
    }

    /// Confirm a subscription by its link.
    pub async fn confirm_subscription(&self, token: &str) -> Result<Subscriber, AppError> {
        let s = self.subscriber_by_link(token, LinkPurpose::Confirm).await?;
        self.store
            .confirm_subscriber(s.id, self.now())
            .await?
            .ok_or_else(|| {
                AppError::Conflict(
                    "this subscription has ended; subscribe again on the status page".into(),
                )
            })
    }

    /// End a subscription by its link (no sign-in).
    pub async fn end_subscription(&self, token: &str) -> Result<Subscriber, AppError> {
        let s = self
            .subscriber_by_link(token, LinkPurpose::Unsubscribe)
            .await?;
        match self.store.unsubscribe(s.id, self.now()).await? {
            Some(s) => Ok(s),
            // Twice is fine: the answer is the same.
            None => Ok(s),
        }
    }

    /// Queue the notices of incident updates and public maintenance not
    /// told yet. Returns how many notices were queued.
    pub async fn fan_out(&self, now: DateTime<Utc>, public_url: &str) -> Result<u64, AppError> {
        let (events, windows) = self.store.fanout_pending(200).await?;
        if events.is_empty() && windows.is_empty() {
            return Ok(0);
        }
        let c = self.catalog.current();
        let subscribers = self.store.subscribers(true).await?;
        let mut notices = Vec::new();
        let mut incidents: std::collections::HashMap<i64, Incident> =
            std::collections::HashMap::new();
        for e in &events {
            if !incidents.contains_key(&e.incident_id)
                && let Some(i) = self.store.incident(e.incident_id).await?
            {
                incidents.insert(i.id, i);
            }
            let Some(i) = incidents.get(&e.incident_id) else {
                continue;
            };
            notices.extend(self.incident_notices(&c, i, e, &subscribers, public_url));
        }
        for w in &windows {
            notices.extend(self.maintenance_notices(&c, w, &subscribers, public_url, now));
        }
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let wids: Vec<i64> = windows.iter().map(|w| w.id).collect();
        Ok(self.store.fan_out(&ids, &wids, &notices, now).await?)
    }

    fn incident_notices(
        &self,
        c: &Catalog,
        i: &Incident,
        e: &IncidentEvent,
        subscribers: &[Subscriber],
        public_url: &str,
    ) -> Vec<NewNotice> {
        let what = match e.kind.as_str() {
            "opened" => "New incident",
            "resolved" => "Resolved",
            _ => e.status.label(),
        };
        let names: Vec<String> = i
            .services
            .iter()
            .map(|s| {
                c.services
                    .get(&s.id)
                    .map_or_else(|| s.id.clone(), |x| x.name.clone())
            })
            .collect();
        let subject = format!("[{}] {what}: {}", self.status_title(), i.title);
        let link = format!("{public_url}/status/incidents/{}", i.id);
        let mut body = format!("{}\n\n{}: {}\n", i.title, e.status.label(), e.message);
        if !names.is_empty() {
            body.push_str(&format!("Affects: {}\n", names.join(", ")));
        }
        let payload = |audience: &str| {
            json!({
                "event": format!("incident.{}", match e.kind.as_str() { "opened" => "opened", "resolved" => "resolved", _ => "updated" }),
                "audience": audience,
                "incident": {
                    "id": i.id, "title": i.title, "severity": i.severity, "status": e.status,
                    "services": i.services, "url": link,
                },
                "update": {"id": e.id, "at": e.at, "status": e.status, "message": e.message, "public": e.public},
            })
        };
        let mut out = Vec::new();
        // Announcement channels hear every update, internal ones too.
        for s in &i.services {
            let Some(svc) = c.services.get(&s.id) else {
                continue;
            };
            for (n, a) in svc.announce.iter().enumerate() {
                out.push(NewNotice {
                    dedup: format!("incident-event:{}:announce:{}:{n}", e.id, s.id),
                    kind: "announce".into(),
                    channel: a.channel.clone(),
                    address: a.address.clone(),
                    subscriber_id: None,
                    subject: format!("{subject}{}", if e.public { "" } else { " (internal)" }),
                    body: format!("{body}{link}\n"),
                    payload: payload("announce"),
                    due_at: e.at,
                });
            }
        }
        // Subscribers hear public updates of incidents the public page shows.
        let public_services: Vec<&str> = i
            .services
            .iter()
            .filter(|s| c.services.get(&s.id).is_some_and(|x| x.public))
            .map(|s| s.id.as_str())
            .collect();
        let shown = i.services.is_empty() || !public_services.is_empty();
        if e.public && shown {
            for sub in subscribers.iter().filter(|sub| {
                sub.services.is_empty()
                    || sub
                        .services
                        .iter()
                        .any(|x| public_services.contains(&x.as_str()))
            }) {
                out.push(NewNotice {
                    dedup: format!("incident-event:{}:subscriber:{}", e.id, sub.id),
                    kind: "incident".into(),
                    channel: sub.kind.clone(),
                    address: sub.address.clone(),
                    subscriber_id: Some(sub.id),
                    subject: subject.clone(),
                    body: format!("{body}\nMore: {link}\n"),
                    payload: payload("subscriber"),
                    due_at: e.at,
                });
            }
        }
        out
    }

    fn maintenance_notices(
        &self,
        c: &Catalog,
        w: &MaintenanceWindow,
        subscribers: &[Subscriber],
        public_url: &str,
        now: DateTime<Utc>,
    ) -> Vec<NewNotice> {
        if !w.public || w.ends_at <= now {
            return Vec::new();
        }
        let service = c
            .target_service(&w.target_kind, &w.target_id)
            .map(str::to_owned);
        let name = service
            .as_deref()
            .and_then(|s| c.services.get(s))
            .map(|s| s.name.clone());
        let subject = format!(
            "[{}] Scheduled maintenance: {}",
            self.status_title(),
            w.display_title()
        );
        let mut body = format!(
            "{}\n\nFrom {} until {}.\n",
            w.display_title(),
            w.starts_at.to_rfc3339(),
            w.ends_at.to_rfc3339()
        );
        if let Some(n) = &name {
            body.push_str(&format!("Affects: {n}\n"));
        }
        if !w.reason.is_empty() && w.reason != w.display_title() {
            body.push_str(&format!("\n{}\n", w.reason));
        }
        body.push_str(&format!(
            "\nMore: {public_url}/status#maintenance-{}\n",
            w.id
        ));
        subscribers
            .iter()
            .filter(|sub| {
                sub.services.is_empty() || service.as_ref().is_some_and(|s| sub.services.contains(s))
            })
            .map(|sub| NewNotice {
                dedup: format!("maintenance:{}:subscriber:{}", w.id, sub.id),
                kind: "maintenance".into(),
                channel: sub.kind.clone(),
                address: sub.address.clone(),
                subscriber_id: Some(sub.id),
                subject: subject.clone(),
                body: body.clone(),
                payload: json!({
                    "event": "maintenance.scheduled",
                    "maintenance": {"id": w.id, "title": w.display_title(), "starts_at": w.starts_at, "ends_at": w.ends_at, "service": service, "reason": w.reason},
                }),
                due_at: now,
            })
            .collect()
    }

    /// Queue handoff notices for shifts that started or ended since each
    /// user's last look (the first look starts the watch; nothing from
    /// before is sent). Returns how many were queued.
    pub async fn handoff_notices(&self, now: DateTime<Utc>) -> Result<u64, AppError> {
        let c = self.catalog.current();
        let mut queued = 0;
        for u in c.users.values().filter(|u| u.handoff_notices) {
            let Some(since) = self.store.handoff_mark(&u.id).await? else {
                self.store.set_handoff_mark(&u.id, now).await?;
                continue;
            };
            // A long outage of Tocsin does not send a pile of stale notices.
            let since = since.max(now - TimeDelta::minutes(10));
            if since >= now {
                continue;
            }
            let contacts: Vec<&tocsin_domain::catalog::Contact> = u
                .low
                .iter()
                .filter_map(|(id, _)| u.contacts.iter().find(|ct| &ct.id == id))
                .collect();
            let mut notices = Vec::new();
            for (sid, s) in &c.schedules {
                let mut mine: Vec<(DateTime<Utc>, DateTime<Utc>)> = s
                    .model
                    .shifts(since - TimeDelta::days(1), now + TimeDelta::days(1))
                    .into_iter()
                    .filter(|sh| sh.user == u.id)
                    .map(|sh| (sh.start, sh.end))
                    .collect();
                mine.sort();
                // Back-to-back shifts are one watch.
                let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
                for (a, b) in mine {
                    match merged.last_mut() {
                        Some(last) if last.1 >= a => last.1 = last.1.max(b),
                        _ => merged.push((a, b)),
                    }
                }
                for (start, end) in merged {
                    for (at, edge) in [(start, "starts"), (end, "ends")] {
                        if at <= since || at > now {
                            continue;
                        }
                        let text = if edge == "starts" {
                            format!(
                                "Your on-call shift on {} starts now and runs until {}.",
                                s.name,
                                end.to_rfc3339()
                            )
                        } else {
                            format!("Your on-call shift on {} has ended.", s.name)
                        };
                        for ct in &contacts {
                            notices.push(NewNotice {
                                dedup: format!("handoff:{}:{sid}:{edge}:{}:{}", u.id, at.timestamp(), ct.id),
                                kind: "handoff".into(),
                                channel: ct.channel.clone(),
                                address: ct.address.clone(),
                                subscriber_id: None,
                                subject: format!("[Tocsin] On call: {} {edge}", s.name),
                                body: format!("{text}\n"),
                                payload: json!({"event": format!("shift.{edge}"), "user": u.id, "schedule": sid, "start": start, "end": end}),
                                due_at: at,
                            });
                        }
                    }
                }
            }
            queued += self.store.queue_notices(&notices, now).await?;
            self.store.set_handoff_mark(&u.id, now).await?;
        }
        Ok(queued)
    }
}
