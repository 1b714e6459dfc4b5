//! Signing in to the web UI: passwords (argon2), browser sessions kept in
//! storage (so every node honours them), rate limits on failed attempts
//! per account and per address, and the one-time setup link of a fresh
//! database. What a session may do is the same [`Principal`] check as a
//! token's.

use chrono::{DateTime, TimeDelta, Utc};
use tocsin_domain::{Principal, Role, TokenDigest};
use tocsin_store::{Actor, NewSession, Session};

use crate::{AppError, Application};

/// The token name of a browser session's principal.
pub const SESSION_TOKEN: &str = "web session";
/// The prefix of session ids (shown in the session list).
const SESSION_PREFIX: &str = "ses_";
/// Failed sign-ins counted over this window…
const FAILURE_WINDOW_MINUTES: i64 = 15;
/// … after this many against one account, that account waits…
const MAX_FAILURES_PER_USER: i64 = 5;
/// … and after this many from one address, that address does.
const MAX_FAILURES_PER_ADDRESS: i64 = 20;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;

/// How long sessions last (`auth.session_idle`, `auth.session_lifetime`).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: TimeDelta,
    pub lifetime: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: TimeDelta::hours(12),
            lifetime: TimeDelta::days(7),
        }
    }
}

/// Where a sign-in comes from.
#[derive(Debug, Clone)]
pub struct Client {
    pub address: String,
    pub user_agent: String,
}

/// A session just made: its record and the cookie's secret.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub session: Session,
    pub secret: String,
}

/// A signed-in browser: who it acts as, and its session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub principal: Principal,
    pub session: Session,
    /// The user's display name.
    pub name: String,
}

fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        ))
    } else {
        None
    }
}

fn invalid(path: &str, message: String) -> AppError {
    AppError::Invalid(vec![tocsin_config::Problem::new(path, message)])
}

/// The argon2id hash of `password` (a PHC string with its own salt),
/// computed off the async threads.
async fn hash_password(password: &str) -> Result<String, AppError> {
    use argon2::PasswordHasher;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(format!("hashing a password: {e}")))?
}

/// Whether `password` matches the PHC string `hash` (argon2 compares in
/// constant time).
async fn verify_password(password: &str, hash: &str) -> Result<bool, AppError> {
    use argon2::PasswordVerifier;
    let password = password.to_owned();
    let hash = hash.to_owned();
    tokio::task::spawn_blocking(move || {
        let parsed = argon2::PasswordHash::new(&hash)
            .map_err(|e| AppError::Internal(format!("a stored password hash: {e}")))?;
        Ok(argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| AppError::Internal(format!("checking a password: {e}")))?
}

/// A hash to check a password against when the user is unknown, so that
/// the answer takes as long as for a known one.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Z2Fwd2h2e3b7Jy4NqO3vY9eGJ3cuqvBNT1Bq0Wv2D1A";

fn wrong() -> AppError {
    AppError::Unauthorized(
        "wrong user or password; check both, or ask an admin to set your password with `tocsin users set-password`".into(),
    )
}

impl Application {
    /// The user whose id is `login`, or whose email is (case-insensitive).
    pub fn find_user(&self, login: &str) -> Option<tocsin_domain::catalog::User> {
        let catalog = self.catalog.current();
        let login = login.trim();
        if let Some(u) = catalog.users.get(login) {
            return Some(u.clone());
        }
        self.user_by_email(login)
            .and_then(|id| catalog.users.get(&id).cloned())
    }

    /// The id of the user with this email (case-insensitive).
    fn user_by_email(&self, email: &str) -> Option<String> {
        self.catalog
            .current()
            .users
            .values()
            .find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|u| u.id.clone())
    }

    /// Fail when `subject` has had too many failed sign-ins lately.
    async fn check_failures(&self, subject: &str, max: i64, what: &str) -> Result<(), AppError> {
        let since = self.now() - TimeDelta::minutes(FAILURE_WINDOW_MINUTES);
        let n = self.store.sign_in_failures(subject, since).await?;
        if n >= max {
            return Err(AppError::Limited(format!(
                "too many failed sign-ins {what}; wait {FAILURE_WINDOW_MINUTES} minutes and try again"
            )));
        }
        Ok(())
    }

    /// Sign in with a user id or email and a password.
    pub async fn sign_in_password(
        &self,
        login: &str,
        password: &str,
        client: &Client,
        policy: &SessionPolicy,
    ) -> Result<IssuedSession, AppError> {
        let address = format!("address:{}", client.address);
        self.check_failures(&address, MAX_FAILURES_PER_ADDRESS, "from your address")
            .await?;
        let user = self.find_user(login);
        let user_subject = user.as_ref().map(|u| format!("user:{}", u.id));
        if let Some(s) = &user_subject {
            self.check_failures(s, MAX_FAILURES_PER_USER, "for this account")
                .await?;
        }
        let hash = match &user {
            Some(u) => self.store.password_hash(&u.id).await?,
            None => None,
        };
        let good = match &hash {
            Some(h) => verify_password(password, h).await?,
            None => {
                // The same work as a real check, so timing does not tell
                // which accounts exist.
                let _ = verify_password(password, DUMMY_HASH).await;
                false
            }
        };
        let (Some(user), true) = (user, good) else {
            let mut subjects = vec![address];
            subjects.extend(user_subject);
            self.store
                .record_sign_in_failure(&subjects, self.now())
                .await?;
            return Err(wrong());
        };
        if let Some(s) = &user_subject {
            self.store.clear_sign_in_failures(s).await?;
        }
        self.start_session(&user.id, "password", client, policy)
            .await
    }

    /// Open a session for `user`, whose identity was established by
    /// `method` (`password`, `oidc`, `setup`).
    pub async fn start_session(
        &self,
        user: &str,
        method: &str,
        client: &Client,
        policy: &SessionPolicy,
    ) -> Result<IssuedSession, AppError> {
        let now = self.now();
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let new = NewSession {
            id: format!("{SESSION_PREFIX}{}", hex::encode(rand::random::<[u8; 8]>())),
            digest: TokenDigest::of(&secret),
            user: user.to_owned(),
            method: method.to_owned(),
            expires_at: now + policy.lifetime,
            address: client.address.chars().take(100).collect(),
            user_agent: client.user_agent.chars().take(300).collect(),
        };
        let session = self.store.create_session(&new, now).await?;
        Ok(IssuedSession { session, secret })
    }

    /// Who the session with cookie secret `secret` is. Ended, expired
    /// (absolute or idle) and unknown sessions are refused, each saying so.
    pub async fn session(
        &self,
        secret: &str,
        policy: &SessionPolicy,
    ) -> Result<SignedIn, AppError> {
        let Some(s) = self
            .store
            .session_by_digest(&TokenDigest::of(secret))
            .await?
        else {
            return Err(AppError::Unauthorized(
                "you are not signed in (the session is not known)".into(),
            ));
        };
        let now = self.now();
        if s.ended_at.is_some() {
            return Err(AppError::Unauthorized(
                "you signed out; sign in again".into(),
            ));
        }
        if s.expires_at <= now {
            return Err(AppError::Unauthorized(
                "your session expired; sign in again".into(),
            ));
        }
        if now - s.last_seen_at > policy.idle {
            return Err(AppError::Unauthorized(
                "your session expired after a time without use; sign in again".into(),
            ));
        }
        let catalog = self.catalog.current();
        let Some(u) = catalog.users.get(&s.user) else {
            return Err(AppError::Unauthorized(format!(
                "the user `{}` is no longer in the catalog",
                s.user
            )));
        };
        let principal = Principal {
            token: SESSION_TOKEN.into(),
            token_id: None,
            role: u.role,
            user: Some(u.id.clone()),
            teams: u.teams.iter().cloned().collect(),
        };
        if now - s.last_seen_at > TimeDelta::minutes(1) {
            self.store.touch_session(&s.id, now).await?;
        }
        Ok(SignedIn {
            principal,
            name: u.name.clone(),
            session: s,
        })
    }

    /// End session `id` of the signed-in user (signing out, or from the
    /// session list).
    pub async fn end_session(&self, who: &SignedIn, id: &str) -> Result<Session, AppError> {
        let user = &who.session.user;
        let actor = Actor::new(format!("user:{user}"), "web");
        self.store
            .end_session(user, id, &actor, self.now())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("you have no session `{id}`")))
    }

    /// The signed-in user's live sessions.
    pub async fn list_sessions(&self, who: &SignedIn) -> Result<Vec<Session>, AppError> {
        Ok(self.store.sessions(&who.session.user, self.now()).await?)
    }

    /// Set `user`'s password. `keep` is a session of theirs that stays
    /// (the one changing it); every other one ends.
    pub async fn set_password(
        &self,
        user: &str,
        password: &str,
        keep: Option<&str>,
        actor: &Actor,
    ) -> Result<(), AppError> {
        if !self.catalog.current().users.contains_key(user) {
            return Err(AppError::NotFound(format!(
                "no user `{user}`; `tocsin users set-password` takes a user id of the catalog"
            )));
        }
        if let Some(p) = password_problem(password) {
            return Err(invalid("password", p));
        }
        let hash = hash_password(password).await?;
        self.store
            .set_password(user, &hash, keep, actor, self.now())
            .await?;
        Ok(())
    }

    /// Change the signed-in user's own password, given the current one.
    pub async fn change_own_password(
        &self,
        who: &SignedIn,
        current: &str,
        new: &str,
    ) -> Result<(), AppError> {
        let user = &who.session.user;
        let good = match self.store.password_hash(user).await? {
            Some(h) => verify_password(current, &h).await?,
            None => false,
        };
        if !good {
            return Err(invalid("current", "the current password is wrong".into()));
        }
        let actor = Actor::new(format!("user:{user}"), "web");
        self.set_password(user, new, Some(&who.session.id), &actor)
            .await
    }

    /// Admins of the catalog who can sign in: with a password, or (when
    /// single sign-on is set up) with an email.
    pub async fn admins_who_can_sign_in(&self, oidc: bool) -> Result<Vec<String>, AppError> {
        let with_password = self.store.users_with_password().await?;
        let catalog = self.catalog.current();
        Ok(catalog
            .users
            .values()
            .filter(|u| u.role == Role::Admin)
            .filter(|u| with_password.contains(&u.id) || (oidc && u.email.is_some()))
            .map(|u| u.id.clone())
            .collect())
    }

    /// A one-time setup link's secret, when no admin can sign in (else
    /// `None`). Each call makes a new link; all stay valid until one is
    /// used or an admin can sign in.
    pub async fn setup_link(&self, oidc: bool) -> Result<Option<String>, AppError> {
        if !self.admins_who_can_sign_in(oidc).await?.is_empty() {
            return Ok(None);
        }
        let secret = hex::encode(rand::random::<[u8; 24]>());
        self.store
            .create_setup_link(&TokenDigest::of(&secret), self.now())
            .await?;
        Ok(Some(secret))
    }

    /// Whether `secret` is a setup link that still works.
    pub async fn setup_link_works(&self, secret: &str, oidc: bool) -> Result<bool, AppError> {
        Ok(self.store.setup_link_open(&TokenDigest::of(secret)).await?
            && self.admins_who_can_sign_in(oidc).await?.is_empty())
    }

    /// Use a setup link: set the password of admin `user` and sign them in.
    pub async fn use_setup_link(
        &self,
        secret: &str,
        user: &str,
        password: &str,
        client: &Client,
        policy: &SessionPolicy,
        oidc: bool,
    ) -> Result<IssuedSession, AppError> {
        let spent = || {
            AppError::Unauthorized(
                "this setup link was used already, or an admin can sign in now; sign in, or ask an admin".into(),
            )
        };
        if !self.setup_link_works(secret, oidc).await? {
            return Err(spent());
        }
        let is_admin = self
            .catalog
            .current()
            .users
            .get(user)
            .is_some_and(|u| u.role == Role::Admin);
        if !is_admin {
            return Err(invalid(
                "user",
                format!("`{user}` is not an admin of the catalog; pick one of the admins listed"),
            ));
        }
        if let Some(p) = password_problem(password) {
            return Err(invalid("password", p));
        }
        let hash = hash_password(password).await?;
        if !self
            .store
            .use_setup_link(&TokenDigest::of(secret), user, &hash, self.now())
            .await?
        {
            return Err(spent());
        }
        self.start_session(user, "setup", client, policy).await
    }

    /// Sign in a user whose identity provider vouched for `email` (single
    /// sign-on). An email no user has is refused, unless `allow_unknown`:
    /// then an observer with that email is added to the catalog (audited,
    /// as a managed object an admin can promote).
    pub async fn sign_in_email(
        &self,
        email: &str,
        allow_unknown: bool,
        client: &Client,
        policy: &SessionPolicy,
    ) -> Result<IssuedSession, AppError> {
        let email = email.trim();
        let found = self.user_by_email(email);
        let user = match found {
            Some(id) => id,
            None if allow_unknown => self.add_observer(email).await?,
            None => {
                return Err(AppError::Forbidden(format!(
                    "no Tocsin user has the email {email}; ask an admin to add you (a user with `email: {email}`)"
                )));
            }
        };
        self.start_session(&user, "oidc", client, policy).await
    }

    /// Add an observer for `email`, its id made from the email's local part.
    async fn add_observer(&self, email: &str) -> Result<String, AppError> {
        let local = email.split('@').next().unwrap_or_default();
        let mut base: String = local
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(50)
            .collect();
        if base.is_empty() {
            base = "user".into();
        }
        let catalog = self.catalog.current();
        let mut id = base.clone();
        let mut n = 2;
        while catalog.users.contains_key(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        let actor = Actor::new("single sign-on", "web (oidc)");
        let body = serde_json::json!({"id": id, "name": email, "email": email, "role": "observer"});
        crate::edit::create(self.store.as_ref(), "users", body, &actor, self.now()).await?;
        self.changed().await;
        Ok(id)
    }

    /// Forget sessions and failed sign-ins that ended before `before`.
    pub async fn prune_sessions(&self, before: DateTime<Utc>) -> Result<u64, AppError> {
        Ok(self.store.prune_sessions(before).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_checks_its_own_password_and_no_other() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h).await.unwrap());
        assert!(!verify_password("correct horse batterx", &h).await.unwrap());
    }

    #[tokio::test]
    async fn the_stand_in_hash_parses_and_matches_nothing_typed() {
        assert!(
            !verify_password("anything at all", DUMMY_HASH)
                .await
                .unwrap()
        );
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(password_problem("short").is_some());
        assert!(password_problem(&"x".repeat(2000)).is_some());
        assert!(password_problem("long enough pw").is_none());
    }
}
