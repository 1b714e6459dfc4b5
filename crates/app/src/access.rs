//! Identity and permissions: who a Bearer token is ([`Application::authenticate`]),
//! personal API tokens, and the use-cases that check a
//! [`Principal`]'s permission before they change anything. The rules
//! themselves are `tocsin_domain::access`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tocsin_domain::{Permission, Principal, Role, Scope, SecretKey, TokenDigest};
use tocsin_store::{
    Actor, AuditFilter, AuditPage, MaintenanceWindow, NewMaintenance, NewToken, PersonalToken,
    Transition, TransitionResult,
};

use crate::{AppError, Application, Assignee};

/// The prefix of personal tokens, so that a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "tcn_";

/// The actor a principal acts as through `channel` (`api`, `cli`, …).
pub fn actor(p: &Principal, channel: &str) -> Actor {
    // Whatever use-case it calls, a browser session acts through the web UI.
    let channel = if p.token == crate::signin::SESSION_TOKEN {
        "web"
    } else {
        channel
    };
    let channel = match &p.user {
        Some(_) if p.token != crate::signin::SESSION_TOKEN => {
            format!("{channel} (token {})", p.token)
        }
        _ => channel.to_owned(),
    };
    Actor::new(p.actor_name(), channel)
}

fn denied(e: tocsin_domain::Denied) -> AppError {
    AppError::Forbidden(e.message)
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What it is for (`laptop`), 1 to 100 characters.
    pub name: String,
    /// At most the caller's and the user's role (the default).
    pub role: Option<Role>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Whom the token is for (admins only; default: the caller's user).
    pub user: Option<String>,
}

/// A token just made: its record and the secret, shown this once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    #[schema(inline)]
    #[serde(flatten)]
    pub token: PersonalToken,
    /// The secret: send it as `Authorization: Bearer …`.
    #[serde(rename = "token")]
    pub token_secret: String,
}

impl Application {
    /// Who `bearer` is: a token of the config file (compared in constant
    /// time against every one) or a personal token (found by its id, its
    /// digest compared in constant time).
    /// A token acting as a user has that user's teams, and never more
    /// than that user's role.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        let catalog = self.catalog.current();
        let digest = TokenDigest::of(bearer);
        let mut found = None;
        for t in &catalog.api_tokens {
            if t.digest.ct_eq(&digest) {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            return self.principal(&catalog, &t.name, None, t.role, t.user.as_deref());
        }
        // A personal token is `tcn_<id>_<secret>`: found by its id, its
        // digest compared in constant time.
        let Some(id) = bearer
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| format!("tok_{id}"))
        else {
            return Err(AppError::Unauthorized(
                "the token is not known; send a token from api_tokens in tocsin.yaml or one made with `tocsin tokens create`".into(),
            ));
        };
        let unknown = || {
            AppError::Unauthorized(
                "the token is not known (was it copied whole?); make a new one with `tocsin tokens create`".into(),
            )
        };
        let Some((t, stored)) = self.store.token_with_digest(&id).await? else {
            return Err(unknown());
        };
        if !stored.ct_eq(&digest) {
            return Err(unknown());
        }
        let now = self.now();
        if let Some(at) = t.revoked_at {
            return Err(AppError::Unauthorized(format!(
                "the token `{}` was revoked at {} by {}; make a new one with `tocsin tokens create`",
                t.name,
                at.to_rfc3339(),
                t.revoked_by.as_deref().unwrap_or("somebody")
            )));
        }
        if let Some(at) = t.expires_at.filter(|at| *at <= now) {
            return Err(AppError::Unauthorized(format!(
                "the token `{}` expired at {}; make a new one with `tocsin tokens create`",
                t.name,
                at.to_rfc3339()
            )));
        }
        let p = self.principal(&catalog, &t.name, Some(&t.id), t.role, Some(&t.user))?;
        if t.last_used_at
            .is_none_or(|at| now - at > chrono::TimeDelta::minutes(1))
        {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(&t.id, now).await {
                    tracing::debug!(error = %e, "could not record a token's last use");
                }
            });
        }
        Ok(p)
    }

    fn principal(
        &self,
        catalog: &tocsin_domain::Catalog,
        token: &str,
        token_id: Option<&str>,
        role: Role,
        user: Option<&str>,
    ) -> Result<Principal, AppError> {
        let Some(user_id) = user else {
            return Ok(Principal::service(token, role));
        };
        let Some(u) = catalog.users.get(user_id) else {
            return Err(AppError::Unauthorized(format!(
                "the token `{token}` acts as user `{user_id}`, who is no longer in the catalog"
            )));
        };
        Ok(Principal {
            token: token.to_owned(),
            token_id: token_id.map(str::to_owned),
            role: role.lower(u.role),
            user: Some(u.id.clone()),
            teams: u.teams.iter().cloned().collect(),
        })
    }

    /// Fail unless `p` may act on alert `id` (its source's, service's and
    /// policy's teams).
    async fn check_alert(&self, p: &Principal, id: i64) -> Result<(), AppError> {
        let Some(a) = self.store.get_alert(id).await? else {
            return Err(AppError::NotFound(format!("no alert {id}")));
        };
        let teams = self.catalog.current().alert_teams(
            &a.source_id,
            a.service_id.as_deref(),
            a.policy_id.as_deref(),
        );
        p.check(
            Permission::ActOnAlert,
            &Scope::Teams(teams),
            &format!("alert {id}"),
        )
        .map_err(denied)
    }

    /// Accept, un-accept or resolve an alert for `p`.
    pub async fn transition_as(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        t: Transition,
    ) -> Result<TransitionResult, AppError> {
        self.check_alert(p, id).await?;
        self.transition(id, t, &actor(p, channel)).await
    }

    /// Reassign an alert for `p`.
    pub async fn reassign_as(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        to: Assignee,
    ) -> Result<TransitionResult, AppError> {
        self.check_alert(p, id).await?;
        self.reassign(id, to, &actor(p, channel)).await
    }

    /// Comment on an alert for `p`.
    pub async fn comment_as(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
        text: &str,
    ) -> Result<Option<tocsin_store::TimelineEntry>, AppError> {
        self.check_alert(p, id).await?;
        self.comment(id, &actor(p, channel), text).await
    }

    /// Open a maintenance window on a source or service for `p`.
    pub async fn start_maintenance(
        &self,
        p: &Principal,
        channel: &str,
        m: &NewMaintenance,
    ) -> Result<MaintenanceWindow, AppError> {
        let (target_kind, target_id) = (m.target_kind.as_str(), m.target_id.as_str());
        let catalog = self.catalog.current();
        let known = match target_kind {
            // Heartbeats are sources too (`heartbeat:ID`).
            "source" => match target_id.strip_prefix("heartbeat:") {
                Some(h) => catalog.heartbeats.contains_key(h),
                None => catalog.sources.contains_key(target_id),
            },
            "service" => catalog.services.contains_key(target_id),
            _ => false,
        };
        if !known {
            return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                target_kind,
                format!("no {target_kind} `{target_id}`"),
            )]));
        }
        let scope = Scope::Teams(catalog.target_teams(target_kind, target_id));
        p.check(
            Permission::ManageMaintenance,
            &scope,
            &format!("{target_kind} {target_id}"),
        )
        .map_err(denied)?;
        let now = self.now();
        if m.ends_at <= m.starts_at || m.ends_at <= now {
            return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                "ends_at",
                "a maintenance window must end after it starts, in the future",
            )]));
        }
        let w = self
            .store
            .create_maintenance(m, &actor(p, channel), now)
            .await?;
        self.windows_changed().await;
        self.status_changed();
        Ok(w)
    }

    /// End a maintenance window now, for `p`.
    pub async fn end_maintenance(
        &self,
        p: &Principal,
        channel: &str,
        id: i64,
    ) -> Result<MaintenanceWindow, AppError> {
        let Some(w) = self.store.maintenance_window(id).await? else {
            return Err(AppError::NotFound(format!("no maintenance window {id}")));
        };
        let scope = Scope::Teams(
            self.catalog
                .current()
                .target_teams(&w.target_kind, &w.target_id),
        );
        p.check(
            Permission::ManageMaintenance,
            &scope,
            &format!(
                "maintenance window {id} of {} {}",
                w.target_kind, w.target_id
            ),
        )
        .map_err(denied)?;
        let w = self
            .store
            .end_maintenance(id, &actor(p, channel), self.now())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no maintenance window {id}")))?;
        self.windows_changed().await;
        self.status_changed();
        Ok(w)
    }

    /// Fail unless `p` may add or remove overrides of `schedule`.
    pub fn check_overrides(&self, p: &Principal, schedule: &str) -> Result<(), AppError> {
        let teams = self.catalog.current().schedule_teams(schedule);
        p.check(
            Permission::ManageOverrides,
            &Scope::Teams(teams),
            &format!("schedule {schedule}"),
        )
        .map_err(denied)
    }

    /// Fail unless `p` may send a test alert through `source` (whose
    /// teams own the alert it makes).
    pub fn check_test_alert(&self, p: &Principal, source: &str) -> Result<(), AppError> {
        let catalog = self.catalog.current();
        if !catalog.sources.contains_key(source) {
            return Err(AppError::NotFound(format!("no source `{source}`")));
        }
        let scope = Scope::Teams(catalog.target_teams("source", source));
        p.check(
            Permission::SendTestAlert,
            &scope,
            &format!("source {source}"),
        )
        .map_err(denied)
    }

    /// Fail unless `p` may change the catalog.
    pub(crate) fn check_catalog(p: &Principal, what: &str) -> Result<(), AppError> {
        p.check(Permission::EditCatalog, &Scope::Global, what)
            .map_err(denied)
    }

    /// Fail unless `p` may act on the profile of `user` (their contact
    /// methods, notify rules, test notifications): that user, or an admin.
    pub fn check_profile(p: &Principal, user: &str) -> Result<(), AppError> {
        p.check(
            Permission::EditProfile,
            &Scope::User(user.to_owned()),
            &format!("user {user}"),
        )
        .map_err(denied)
    }

    /// A responder changing their own user: only `contacts` and `notify`
    /// may differ from the stored user.
    pub(crate) async fn check_own_profile(
        &self,
        p: &Principal,
        id: &str,
        body: &Value,
    ) -> Result<(), AppError> {
        Self::check_profile(p, id)?;
        let stored = self.store.catalog().await?;
        let Some(old) = stored.object("users", id) else {
            return Err(AppError::NotFound(format!("no user `{id}`")));
        };
        let own = ["contacts", "notify", "id", "origin", "revision"];
        let mut before = old.spec.clone();
        tocsin_config::catalog::redact("users", id, &mut before);
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map(|m| {
                    m.keys()
                        .filter(|k| !own.contains(&k.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut all = keys(&before);
        all.extend(keys(body));
        all.sort();
        all.dedup();
        if let Some(k) = all.into_iter().find(|k| before.get(k) != body.get(k)) {
            return Err(AppError::Forbidden(format!(
                "missing permission `{}` on user {id}: a responder may change their own `contacts` and `notify`, not `{k}`; it needs role admin",
                Permission::EditCatalog.as_str()
            )));
        }
        Ok(())
    }

    /// Issue a personal token for `p` (or, for an admin, for `req.user`).
    pub async fn create_token(
        &self,
        p: &Principal,
        channel: &str,
        req: TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        let catalog = self.catalog.current();
        let Some(user) = req.user.clone().or_else(|| p.user.clone()) else {
            return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                "user",
                "missing; a service token acts as nobody, so name the user the token is for",
            )]));
        };
        p.check(
            Permission::ManageTokens,
            &Scope::User(user.clone()),
            &format!("the tokens of user {user}"),
        )
        .map_err(denied)?;
        let Some(u) = catalog.users.get(&user) else {
            return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                "user",
                format!("no user `{user}`"),
            )]));
        };
        let name = req.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                "name",
                "give the token a name of 1 to 100 characters (where it is used, such as `laptop`)",
            )]));
        }
        let cap = p.role.lower(u.role);
        let role = req.role.unwrap_or(cap);
        if !role.at_most(cap) {
            return Err(AppError::Forbidden(format!(
                "missing permission `{}`: a token's role may be no higher than its issuer's and its user's ({}); asked for {}",
                Permission::ManageTokens.as_str(),
                cap.as_str(),
                role.as_str()
            )));
        }
        let now = self.now();
        if let Some(at) = req.expires_at.filter(|at| *at <= now) {
            return Err(AppError::Invalid(vec![tocsin_config::Problem::new(
                "expires_at",
                format!("{} is in the past", at.to_rfc3339()),
            )]));
        }
        let id = hex::encode(rand::random::<[u8; 6]>());
        let secret = SecretKey::new(format!(
            "{TOKEN_PREFIX}{id}_{}",
            hex::encode(rand::random::<[u8; 24]>())
        ));
        let new = NewToken {
            id: format!("tok_{id}"),
            name: name.to_owned(),
            role,
            user,
            digest: secret.digest(),
            expires_at: req.expires_at,
        };
        let token = self
            .store
            .create_token(&new, &actor(p, channel), now)
            .await?;
        Ok(IssuedToken {
            token,
            token_secret: secret.expose().to_owned(),
        })
    }

    /// Personal tokens `p` may see: an admin's view has everybody's (or
    /// `user`'s); anybody else sees their own.
    pub async fn list_tokens(
        &self,
        p: &Principal,
        user: Option<&str>,
    ) -> Result<Vec<PersonalToken>, AppError> {
        let whose = match (p.role, user) {
            (Role::Admin, u) => u.map(str::to_owned),
            (_, u) => {
                let own = p.user.clone().ok_or_else(|| {
                    AppError::Forbidden(format!(
                        "missing permission `{}`: token `{}` is a service token and has no tokens of its own",
                        Permission::ManageTokens.as_str(),
                        p.token
                    ))
                })?;
                // Another user's tokens: only an admin's (refused here).
                if let Some(u) = u.filter(|u| *u != own) {
                    p.check(
                        Permission::ManageTokens,
                        &Scope::User(u.to_owned()),
                        &format!("the tokens of user {u}"),
                    )
                    .map_err(denied)?;
                }
                Some(own)
            }
        };
        Ok(self.store.tokens(whose.as_deref()).await?)
    }

    /// Revoke a personal token: its owner or an admin. Effective on every
    /// node at once (tokens are looked up in storage on each request).
    pub async fn revoke_token(
        &self,
        p: &Principal,
        channel: &str,
        id: &str,
    ) -> Result<PersonalToken, AppError> {
        let Some(t) = self.store.token(id).await? else {
            return Err(AppError::NotFound(format!("no token `{id}`")));
        };
        p.check(
            Permission::ManageTokens,
            &Scope::User(t.user.clone()),
            &format!("token {id}"),
        )
        .map_err(denied)?;
        self.store
            .revoke_token(id, &actor(p, channel), self.now())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no token `{id}`")))
    }

    /// The audit log (every role reads it).
    pub async fn audit(&self, filter: &AuditFilter) -> Result<AuditPage, AppError> {
        Ok(self.store.audit(filter).await?)
    }
}
