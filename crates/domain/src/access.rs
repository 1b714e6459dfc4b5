//! Who may do what (SPEC §10: roles enforced server-side, scoped by team).
//!
//! A [`Principal`] is what a request acts as: a token's name, role, the
//! user it acts for and that user's teams. [`Principal::check`] decides a
//! [`Permission`] on an object owned by some teams; a refusal names the
//! permission that is missing.
//!
//! - admin: everything.
//! - responder: reads everything; acts on alerts and maintenance windows
//!   of their teams' sources, services and policies, and adds and removes
//!   overrides on their teams' schedules (an object without a team is
//!   everyone's); manages their own contact methods, notify rules and
//!   tokens.
//! - observer: reads only.

use std::collections::BTreeSet;
use std::fmt;

use crate::Role;
use crate::catalog::Catalog;

/// What a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (`ci`, or a personal token's name).
    pub token: String,
    /// A personal token's id; `None` for a token of the config file.
    pub token_id: Option<String>,
    pub role: Role,
    /// The user it acts as; `None` for a service token.
    pub user: Option<String>,
    /// The user's teams (none for a service token).
    pub teams: BTreeSet<String>,
}

/// Something a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Accept, un-accept, resolve, comment on and reassign an alert.
    ActOnAlert,
    /// Start and end maintenance windows of a source or service.
    ManageMaintenance,
    /// Add and remove overrides of a schedule.
    ManageOverrides,
    /// Create, replace and delete catalog objects; apply a file; rotate keys.
    EditCatalog,
    /// Change a user's contact methods and notify rules.
    EditProfile,
    /// Create, list and revoke a user's personal tokens.
    ManageTokens,
    /// Send a test alert through a source.
    SendTestAlert,
    /// Open, update, change and resolve incidents; link alerts to them.
    ManageIncidents,
}

impl Permission {
    /// The permission's name, as refusals print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ActOnAlert => "alerts.act",
            Permission::ManageMaintenance => "maintenance.manage",
            Permission::ManageOverrides => "overrides.manage",
            Permission::EditCatalog => "catalog.edit",
            Permission::EditProfile => "profile.edit",
            Permission::ManageTokens => "tokens.manage",
            Permission::SendTestAlert => "alerts.test",
            Permission::ManageIncidents => "incidents.manage",
        }
    }
}

/// What a permission is checked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Nothing in particular (the whole catalog).
    Global,
    /// An object owned by these teams (empty: everyone's).
    Teams(BTreeSet<String>),
    /// Something of this user (their profile, their tokens).
    User(String),
}

/// A refusal: which permission is missing, for whom, on what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub permission: Permission,
    pub message: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denied {}

impl Principal {
    /// A token of the config file (or any principal without a personal token).
    pub fn service(token: impl Into<String>, role: Role) -> Self {
        Principal {
            token: token.into(),
            token_id: None,
            role,
            user: None,
            teams: BTreeSet::new(),
        }
    }

    /// Who this is, as the timeline and the audit log name them:
    /// `user:ID` when acting for a user, else `token:NAME`.
    pub fn actor_name(&self) -> String {
        match &self.user {
            Some(u) => format!("user:{u}"),
            None => format!("token:{}", self.token),
        }
    }

    /// Whether `permission` is granted on `scope`.
    pub fn allows(&self, permission: Permission, scope: &Scope) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Observer => false,
            Role::Responder => match (permission, scope) {
                (Permission::EditCatalog, _) => false,
                (Permission::EditProfile | Permission::ManageTokens, Scope::User(u)) => {
                    self.user.as_deref() == Some(u.as_str())
                }
                (Permission::EditProfile | Permission::ManageTokens, _) => false,
                (
                    Permission::ActOnAlert
                    | Permission::ManageMaintenance
                    | Permission::ManageOverrides
                    | Permission::SendTestAlert
                    | Permission::ManageIncidents,
                    Scope::Teams(owners),
                ) => owners.is_empty() || !owners.is_disjoint(&self.teams),
                (
                    Permission::ActOnAlert
                    | Permission::ManageMaintenance
                    | Permission::ManageOverrides
                    | Permission::SendTestAlert
                    | Permission::ManageIncidents,
                    _,
                ) => false,
            },
        }
    }

    /// `Ok` when `permission` is granted on `scope`, else a refusal that
    /// names the missing permission and says who would have it. `what`
    /// names the object (`alert 42`, `schedule sre-primary`).
    pub fn check(&self, permission: Permission, scope: &Scope, what: &str) -> Result<(), Denied> {
        if self.allows(permission, scope) {
            return Ok(());
        }
        let who = self.describe();
        let needs = match (permission, scope) {
            (Permission::EditCatalog, _) => "it needs role admin".to_owned(),
            (Permission::EditProfile | Permission::ManageTokens, Scope::User(u)) => {
                format!("it needs to be user `{u}` (role responder or admin), or role admin")
            }
            (_, Scope::Teams(owners)) if !owners.is_empty() => format!(
                "{what} belongs to team {}; it needs role responder in that team, or role admin",
                join(owners)
            ),
            _ => "it needs role responder or admin".to_owned(),
        };
        Err(Denied {
            permission,
            message: format!(
                "missing permission `{}` on {what}: {who}; {needs}",
                permission.as_str()
            ),
        })
    }

    fn describe(&self) -> String {
        let teams = if self.teams.is_empty() {
            "no team".to_owned()
        } else {
            format!("team {}", join(&self.teams))
        };
        match &self.user {
            Some(u) => format!(
                "token `{}` acts as user `{u}` with role {} in {teams}",
                self.token,
                self.role.as_str()
            ),
            None => format!(
                "token `{}` is a service token with role {}",
                self.token,
                self.role.as_str()
            ),
        }
    }
}

fn join(teams: &BTreeSet<String>) -> String {
    teams.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl Catalog {
    /// The teams an alert belongs to: those of its source, its service and
    /// its escalation policy (`source_id` may be `heartbeat:ID`).
    pub fn alert_teams(
        &self,
        source_id: &str,
        service_id: Option<&str>,
        policy_id: Option<&str>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let source_team = match source_id.strip_prefix("heartbeat:") {
            Some(h) => self.heartbeats.get(h).and_then(|h| h.team.clone()),
            None => self.sources.get(source_id).and_then(|s| s.team.clone()),
        };
        out.extend(source_team);
        if let Some(s) = service_id.and_then(|id| self.services.get(id)) {
            out.extend(s.team.clone());
        }
        if let Some(p) = policy_id.and_then(|id| self.policies.get(id)) {
            out.extend(p.team.clone());
        }
        out
    }

    /// The service a maintenance target stands for: the service itself, or
    /// the service of the source (or `heartbeat:ID`) it names.
    pub fn target_service(&self, kind: &str, id: &str) -> Option<&str> {
        match kind {
            "service" => self.services.get(id).map(|s| s.id.as_str()),
            "source" => match id.strip_prefix("heartbeat:") {
                Some(h) => self.heartbeats.get(h)?.service_id.as_deref(),
                None => self.sources.get(id)?.service_id.as_deref(),
            },
            _ => None,
        }
    }

    /// The teams a maintenance window on a source or service belongs to:
    /// the target's own team and that of the policy it routes to.
    pub fn target_teams(&self, kind: &str, id: &str) -> BTreeSet<String> {
        match kind {
            "source" => match id.strip_prefix("heartbeat:") {
                Some(h) => self
                    .heartbeats
                    .get(h)
                    .map(|b| self.alert_teams(id, b.service_id.as_deref(), Some(&b.policy_id)))
                    .unwrap_or_default(),
                None => self
                    .sources
                    .get(id)
                    .map(|s| self.alert_teams(id, s.service_id.as_deref(), Some(&s.policy_id)))
                    .unwrap_or_default(),
            },
            "service" => self
                .services
                .get(id)
                .map(|s| self.alert_teams("", Some(id), s.policy_id.as_deref()))
                .unwrap_or_default(),
            _ => BTreeSet::new(),
        }
    }

    /// The team owning a schedule, as a scope.
    pub fn schedule_teams(&self, id: &str) -> BTreeSet<String> {
        self.schedules
            .get(id)
            .and_then(|s| s.team.clone())
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder(teams: &[&str]) -> Principal {
        Principal {
            token: "laptop".into(),
            token_id: Some("t1".into()),
            role: Role::Responder,
            user: Some("alice".into()),
            teams: teams.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn owned(teams: &[&str]) -> Scope {
        Scope::Teams(teams.iter().map(|t| t.to_string()).collect())
    }

    #[test]
    fn responders_act_on_their_teams_and_on_objects_of_no_team() {
        let p = responder(&["sre"]);
        assert!(p.allows(Permission::ActOnAlert, &owned(&["sre"])));
        assert!(p.allows(Permission::ActOnAlert, &owned(&["db", "sre"])));
        assert!(p.allows(Permission::ActOnAlert, &owned(&[])));
        assert!(!p.allows(Permission::ActOnAlert, &owned(&["db"])));
        assert!(!p.allows(Permission::EditCatalog, &Scope::Global));
        assert!(p.allows(Permission::ManageTokens, &Scope::User("alice".into())));
        assert!(!p.allows(Permission::ManageTokens, &Scope::User("bob".into())));
    }

    #[test]
    fn observers_never_act_and_admins_always_do() {
        let mut p = responder(&["sre"]);
        p.role = Role::Observer;
        assert!(!p.allows(Permission::ActOnAlert, &owned(&[])));
        assert!(!p.allows(Permission::ManageTokens, &Scope::User("alice".into())));
        p.role = Role::Admin;
        assert!(p.allows(Permission::EditCatalog, &Scope::Global));
        assert!(p.allows(Permission::ActOnAlert, &owned(&["db"])));
    }

    #[test]
    fn a_refusal_names_the_missing_permission_and_the_owning_team() {
        let e = responder(&["sre"])
            .check(Permission::ActOnAlert, &owned(&["db"]), "alert 42")
            .unwrap_err();
        assert!(e.message.contains("`alerts.act`"), "{}", e.message);
        assert!(
            e.message.contains("alert 42 belongs to team db"),
            "{}",
            e.message
        );
        assert!(e.message.contains("user `alice`"), "{}", e.message);
    }
}
