//! Incidents: the use-cases every entry point calls (API, UI, CLI, the
//! auto-resolve worker). Each checks the caller's permission on the teams
//! of the incident's services, checks its input against the catalog in
//! effect, and lets the store write the change, its timeline entry and its
//! audit entry in one transaction.

use std::collections::BTreeSet;

use serde::Deserialize;
use tocsin_config::Problem;
use tocsin_domain::incident::IncidentStatus;
use tocsin_domain::{Catalog, Permission, Principal, Scope, Severity};
use tocsin_store::{
    Actor, Incident, IncidentChange, IncidentEvent, IncidentNote, IncidentService, NewIncident,
    StoreError,
};

use crate::access::actor;
use crate::{AppError, Application};

/// `POST /api/v1/incidents`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// 1 to 200 characters. It is public when a public service is affected.
    pub title: String,
    pub severity: Severity,
    /// Default `investigating`.
    pub status: Option<IncidentStatus>,
    /// The affected services, each with its impact.
    #[serde(default)]
    pub services: Vec<IncidentService>,
    /// User ids.
    #[serde(default)]
    pub responders: Vec<String>,
    /// The first update (default: "Investigating.").
    pub message: Option<String>,
    /// Whether the first update is public: shown on the status page and
    /// told to subscribers. Required: announcing is explicit.
    pub public: bool,
    /// Alerts to link.
    #[serde(default)]
    pub alert_ids: Vec<i64>,
}

/// `POST /api/v1/incidents/{id}/updates`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// 1 to 10,000 characters.
    pub message: String,
    /// Shown on the status page and told to subscribers (`true`), or
    /// internal (`false`). Required: announcing is explicit.
    pub public: bool,
    /// The new status (default: unchanged); `resolved` resolves it.
    pub status: Option<IncidentStatus>,
}

/// `PATCH /api/v1/incidents/{id}`: the fields given change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    pub title: Option<String>,
    pub severity: Option<Severity>,
    /// The affected services, each with its impact (replaces the list).
    pub services: Option<Vec<IncidentService>>,
    pub responders: Option<Vec<String>>,
}

/// `POST /api/v1/incidents/{id}/resolve`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The last update (default: "Resolved.").
    pub message: Option<String>,
    /// Whether it is public (default `true`: a resolution ends what the
    /// status page shows).
    pub public: Option<bool>,
}

/// What the auto-resolve worker writes.
pub const AUTO_RESOLVED: &str = "This incident has been resolved: every linked alert is resolved.";

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem::new(path, message)
}

fn check_text(path: &str, text: &str, max: usize, out: &mut Vec<Problem>) {
    let n = text.trim().chars().count();
    if n == 0 {
        out.push(problem(path, "must not be empty"));
    } else if n > max {
        out.push(problem(
            path,
            format!("at most {max} characters ({n} given)"),
        ));
    }
}

fn check_services(c: &Catalog, services: &[IncidentService], path: &str, out: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    for (i, s) in services.iter().enumerate() {
        if !c.services.contains_key(&s.id) {
            let known: Vec<&str> = c.services.keys().map(String::as_str).collect();
            out.push(problem(
                format!("{path}[{i}].id"),
                format!(
                    "no service `{}`; the services are: {}",
                    s.id,
                    known.join(", ")
                ),
            ));
        }
        if !seen.insert(&s.id) {
            out.push(problem(
                format!("{path}[{i}].id"),
                format!("`{}` is listed twice", s.id),
            ));
        }
    }
}

fn check_responders(c: &Catalog, users: &[String], path: &str, out: &mut Vec<Problem>) {
    for (i, u) in users.iter().enumerate() {
        if !c.users.contains_key(u) {
            out.push(problem(format!("{path}[{i}]"), format!("no user `{u}`")));
        }
    }
}

fn invalid(problems: Vec<Problem>) -> Result<(), AppError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(problems))
    }
}

/// An alert that is not there, from the store, as the caller's mistake.
fn store_error(e: StoreError, path: &str) -> AppError {
    match e {
        StoreError::Conflict { kind, message, .. } if kind == "alert" => {
            AppError::Invalid(vec![problem(path, message)])
        }
        StoreError::Conflict { message, .. } => AppError::Conflict(message),
        e => AppError::Store(e),
    }
}

impl Application {
    /// The teams an incident on these services belongs to (none: everyone's).
    fn incident_scope(&self, services: &[IncidentService]) -> Scope {
        let c = self.catalog.current();
        Scope::Teams(
            services
                .iter()
                .flat_map(|s| c.target_teams("service", &s.id))
                .collect(),
        )
    }

    fn may_manage(
        &self,
        p: &Principal,
        services: &[IncidentService],
        what: &str,
    ) -> Result<(), AppError> {
        p.check(
            Permission::ManageIncidents,
            &self.incident_scope(services),
            what,
        )
        .map_err(|e| AppError::Forbidden(e.message))
    }

    async fn existing(&self, id: i64) -> Result<Incident, AppError> {
        self.store
            .incident(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("there is no incident {id}")))
    }

    /// An incident and its timeline.
    pub async fn incident_view(&self, id: i64) -> Result<(Incident, Vec<IncidentEvent>), AppError> {
        let i = self.existing(id).await?;
        let events = self.store.incident_events(id).await?;
        Ok((i, events))
    }

    /// Open an incident by hand for `p`.
    pub async fn open_incident(
        &self,
        p: &Principal,
        channel: &str,
        r: &OpenRequest,
    ) -> Result<Incident, AppError> {
        let c = self.catalog.current();
        let mut problems = Vec::new();
        check_text("title", &r.title, 200, &mut problems);
        if let Some(m) = &r.message {
            check_text("message", m, 10_000, &mut problems);
        }
        if r.status == Some(IncidentStatus::Resolved) {
            problems.push(problem(
                "status",
                "an incident opens unresolved: investigating, identified or monitoring",
            ));
        }
        check_services(&c, &r.services, "services", &mut problems);
        check_responders(&c, &r.responders, "responders", &mut problems);
        invalid(problems)?;
        self.may_manage(p, &r.services, "a new incident")?;
        let new = NewIncident {
            title: r.title.trim().to_owned(),
            severity: r.severity,
            status: r.status.unwrap_or(IncidentStatus::Investigating),
            services: r.services.clone(),
            responders: r.responders.clone(),
            message: r
                .message
                .as_deref()
                .map(str::trim)
                .unwrap_or("Investigating.")
                .to_owned(),
            public: r.public,
            alert_ids: r.alert_ids.clone(),
        };
        let i = self
            .store
            .open_incident(&new, &actor(p, channel), self.now())
            .await
            .map_err(|e| store_error(e, "alert_ids"))?;
        self.status_changed();
        Ok(i)
    }

    /// Post an update for `p`; it holds the incident (no auto-resolve).
    pub async fn post_incident_update(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        r: &UpdateRequest,
    ) -> Result<Incident, AppError> {
        let mut problems = Vec::new();
        check_text("message", &r.message, 10_000, &mut problems);
        invalid(problems)?;
        let before = self.existing(id).await?;
        self.may_manage(p, &before.services, &format!("incident {id}"))?;
        let note = IncidentNote {
            message: r.message.trim().to_owned(),
            public: r.public,
            status: r.status,
        };
        let out = self
            .store
            .post_incident_update(id, &note, &actor(p, channel), self.now())
            .await
            .map_err(|e| store_error(e, ""))?
            .ok_or_else(|| AppError::NotFound(format!("there is no incident {id}")))?;
        self.status_changed();
        Ok(out)
    }

    /// Change title, severity, services and impacts, or responders.
    pub async fn change_incident(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        r: &ChangeRequest,
    ) -> Result<Incident, AppError> {
        let c = self.catalog.current();
        let mut problems = Vec::new();
        if let Some(t) = &r.title {
            check_text("title", t, 200, &mut problems);
        }
        if let Some(s) = &r.services {
            check_services(&c, s, "services", &mut problems);
        }
        if let Some(u) = &r.responders {
            check_responders(&c, u, "responders", &mut problems);
        }
        invalid(problems)?;
        let before = self.existing(id).await?;
        // Both the teams it belonged to and those it will belong to.
        let mut touched = before.services.clone();
        touched.extend(r.services.clone().unwrap_or_default());
        self.may_manage(p, &before.services, &format!("incident {id}"))?;
        self.may_manage(p, &touched, &format!("incident {id}"))?;
        let change = IncidentChange {
            title: r.title.as_deref().map(|t| t.trim().to_owned()),
            severity: r.severity,
            services: r.services.clone(),
            responders: r.responders.clone(),
        };
        let out = self
            .store
            .change_incident(id, &change, &actor(p, channel), self.now())
            .await
            .map_err(|e| store_error(e, ""))?
            .ok_or_else(|| AppError::NotFound(format!("there is no incident {id}")))?;
        self.status_changed();
        Ok(out)
    }

    /// Resolve by hand for `p`.
    pub async fn resolve_incident(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        r: &ResolveRequest,
    ) -> Result<Incident, AppError> {
        let mut problems = Vec::new();
        if let Some(m) = &r.message {
            check_text("message", m, 10_000, &mut problems);
        }
        invalid(problems)?;
        let before = self.existing(id).await?;
        self.may_manage(p, &before.services, &format!("incident {id}"))?;
        let message = r.message.as_deref().map(str::trim).unwrap_or("Resolved.");
        let out = self
            .store
            .resolve_incident(
                id,
                message,
                r.public.unwrap_or(true),
                &actor(p, channel),
                self.now(),
            )
            .await
            .map_err(|e| store_error(e, ""))?
            .ok_or_else(|| AppError::NotFound(format!("there is no incident {id}")))?;
        self.status_changed();
        Ok(out)
    }

    /// Link (`linked`) or unlink an alert for `p`.
    pub async fn link_incident_alert(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        alert_id: i64,
        linked: bool,
    ) -> Result<Incident, AppError> {
        let before = self.existing(id).await?;
        self.may_manage(p, &before.services, &format!("incident {id}"))?;
        if !linked && !before.alert_ids.contains(&alert_id) {
            return Err(AppError::NotFound(format!(
                "alert {alert_id} is not linked to incident {id}"
            )));
        }
        let out = self
            .store
            .link_incident_alert(id, alert_id, linked, &actor(p, channel), self.now())
            .await
            .map_err(|e| store_error(e, "alert_id"))?
            .ok_or_else(|| AppError::NotFound(format!("there is no incident {id}")))?;
        Ok(out)
    }

    /// Resolve every open incident nobody holds whose linked alerts are
    /// all resolved (the worker's tick). Returns how many it resolved.
    pub async fn auto_resolve_incidents(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, AppError> {
        let ids = self.store.resolvable_incidents(100).await?;
        let system = Actor::new("system", "auto-resolve");
        let mut n = 0;
        for id in ids {
            if self
                .store
                .auto_resolve_incident(id, AUTO_RESOLVED, &system, now)
                .await?
            {
                n += 1;
            }
        }
        if n > 0 {
            self.status_changed();
        }
        Ok(n)
    }
}

/// How many linked alerts a report lists with their timelines.
const REPORT_ALERTS: usize = 50;

fn duration_words(d: chrono::TimeDelta) -> String {
    let m = d.num_minutes();
    match (m / 1440, (m % 1440) / 60, m % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// Markdown's special characters in text from people or alerts.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
            out.push('\\');
        }
        out.push(if c == '\n' { ' ' } else { c });
    }
    out
}

impl Application {
    /// The incident as Markdown: summary, impact per service with its
    /// duration, and the timeline of its updates merged with its linked
    /// alerts' events, oldest first: the start of a postmortem.
    pub async fn incident_report(&self, id: i64) -> Result<String, AppError> {
        use std::fmt::Write;
        let (i, events) = self.incident_view(id).await?;
        let now = self.now();
        let catalog = self.catalog.current();
        let spans: Vec<_> = self
            .store
            .service_spans(i.opened_at)
            .await?
            .into_iter()
            .filter(|s| s.incident_id == id)
            .collect();
        let mut out = String::new();
        let end = i.resolved_at.unwrap_or(now);
        let _ = writeln!(out, "# Incident {}: {}\n", i.id, md(&i.title));
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| Severity | {} |", i.severity);
        let _ = writeln!(out, "| Status | {} |", i.status.label());
        let _ = writeln!(
            out,
            "| Opened | {} by {} |",
            i.opened_at.to_rfc3339(),
            md(&i.opened_by)
        );
        match i.resolved_at {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "| Resolved | {} by {} |",
                    t.to_rfc3339(),
                    md(i.resolved_by.as_deref().unwrap_or("?"))
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| Resolved | not yet (report made {}) |",
                    now.to_rfc3339()
                );
            }
        }
        let _ = writeln!(out, "| Duration | {} |", duration_words(end - i.opened_at));
        if !i.responders.is_empty() {
            let _ = writeln!(out, "| Responders | {} |", md(&i.responders.join(", ")));
        }
        let _ = writeln!(out, "| Linked alerts | {} |", i.alert_ids.len());
        let _ = writeln!(out, "\n## Impact\n");
        if spans.is_empty() && i.services.is_empty() {
            let _ = writeln!(out, "No service was marked affected.");
        } else {
            let _ = writeln!(
                out,
                "| Service | Impact | From | Until | Duration |\n|---|---|---|---|---|"
            );
            for s in &spans {
                let name = catalog
                    .services
                    .get(&s.service_id)
                    .map_or(s.service_id.as_str(), |x| x.name.as_str());
                let until = s.span.to.unwrap_or(now);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    md(name),
                    s.span.impact,
                    s.span.from.to_rfc3339(),
                    s.span.to.map_or("ongoing".to_owned(), |t| t.to_rfc3339()),
                    duration_words(until - s.span.from)
                );
            }
        }
        // The merged timeline.
        let mut lines: Vec<(chrono::DateTime<chrono::Utc>, i64, String)> = events
            .iter()
            .map(|e| {
                let what = if e.is_update() {
                    format!(
                        "**{}** ({}): {}",
                        e.status.label(),
                        if e.public { "public" } else { "internal" },
                        md(&e.message)
                    )
                } else {
                    md(&e.message)
                };
                (e.at, 1, format!("{what} — {}", md(&e.actor)))
            })
            .collect();
        for a in i.alert_ids.iter().take(REPORT_ALERTS) {
            for t in self.store.timeline(*a).await? {
                lines.push((
                    t.at,
                    0,
                    format!(
                        "alert #{a} {}: {} — {}",
                        md(&t.kind),
                        md(&t.message),
                        md(&t.actor)
                    ),
                ));
            }
        }
        lines.sort_by_key(|l| (l.0, l.1));
        let _ = writeln!(out, "\n## Timeline\n");
        for (at, _, text) in &lines {
            let _ = writeln!(out, "- {} {text}", at.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        if i.alert_ids.len() > REPORT_ALERTS {
            let _ = writeln!(
                out,
                "\n{} more linked alerts are not listed; see `GET /api/v1/incidents/{id}` for their ids.",
                i.alert_ids.len() - REPORT_ALERTS
            );
        }
        let _ = writeln!(
            out,
            "\n## Follow-up\n\n- What happened:\n- Why:\n- What we change:"
        );
        Ok(out)
    }
}
