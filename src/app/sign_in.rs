//! Signing in to the console: the password (with lock-out and the per-client allowance), the
//! optional second factor, sessions and their limits, bearer tokens for the API.

use super::{App, ops::Actor};
use crate::{
    auth::{self, NewSecret},
    delivery::redact_addresses,
    store::{Role, SessionStage, now_ms},
};

/// How a sign-in ended. Wrong address, wrong password and a locked account are one answer:
/// the form must not tell which addresses have accounts.
pub enum LoginOutcome {
    /// Signed in: set this session cookie.
    Session(NewSecret),
    /// The password was right; the second factor is next (a session good for that only).
    NeedCode(NewSecret),
    Refused,
}

/// What a session cookie opens.
pub enum SessionLookup {
    Full(Actor),
    /// Password given, code awaited.
    AwaitingCode,
    None,
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis() as i64
}

/// An account's address as the console keys it.
pub(super) fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl App {
    /// Counts one wrong password or code against an account, as sign-in does; whether that
    /// locked it (`security.login_attempts` within the lock-out).
    pub(super) async fn failed_attempt(&self, admin: i64, now: i64) -> anyhow::Result<bool> {
        let sec = &self.settings.security;
        self.store
            .login_failed(admin, sec.login_attempts as i64, ms(sec.lockout), now)
            .await
    }

    fn session_limits(&self) -> (i64, i64) {
        let s = &self.settings.security;
        (ms(s.session_idle), ms(s.session_max))
    }

    /// Checks an address and password. `previous` is the browser's current session cookie,
    /// which ends here whatever the outcome (a session id never survives a sign-in).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &str,
        previous: Option<&str>,
    ) -> anyhow::Result<LoginOutcome> {
        let now = now_ms();
        let email = account_key(email);
        let admin = if email.len() <= 254 {
            self.store.admin_by_email(&email).await?
        } else {
            None
        };
        let password = password
            .chars()
            .take(auth::MAX_PASSWORD)
            .collect::<String>();
        // The hash is checked even for an unknown or locked account: same time, same answer.
        let ok =
            auth::verify_password(admin.as_ref().map(|a| a.password_hash.clone()), password).await;
        if let Some(old) = previous {
            self.store.end_session(&auth::sha256_hex(old)).await?;
        }
        let actor = |name: &str| Actor {
            name: name.to_owned(),
            role: Role::Viewer,
            client: client.to_owned(),
            admin_id: admin.as_ref().map(|a| a.id),
        };
        let Some(admin) = admin.as_ref() else {
            self.audit(
                &actor("unknown"),
                "login_failed",
                "",
                redact_addresses(&email),
            )
            .await;
            return Ok(LoginOutcome::Refused);
        };
        if admin.locked_until > now {
            self.audit(&actor(&admin.email), "login_locked", "", "")
                .await;
            return Ok(LoginOutcome::Refused);
        }
        if !ok {
            let locked = self.failed_attempt(admin.id, now).await?;
            let action = if locked {
                "account_locked"
            } else {
                "login_failed"
            };
            self.audit(&actor(&admin.email), action, "", "").await;
            return Ok(LoginOutcome::Refused);
        }
        let (_, absolute) = self.session_limits();
        let session = NewSecret::session();
        if admin.totp_secret.is_some() {
            self.store
                .start_session(
                    &session.hash,
                    admin.id,
                    SessionStage::Totp,
                    None,
                    now,
                    absolute,
                )
                .await?;
            return Ok(LoginOutcome::NeedCode(session));
        }
        self.store.login_succeeded(admin.id).await?;
        self.store
            .start_session(
                &session.hash,
                admin.id,
                SessionStage::Full,
                None,
                now,
                absolute,
            )
            .await?;
        self.audit(&actor(&admin.email), "login", "", "").await;
        Ok(LoginOutcome::Session(session))
    }

    /// The second step: the code from the authenticator, with the session the password
    /// opened. A right code ends that session and starts a new one.
    pub async fn login_code(
        &self,
        pending: &str,
        code: &str,
        client: &str,
    ) -> anyhow::Result<LoginOutcome> {
        let now = now_ms();
        let (idle, absolute) = self.session_limits();
        let hash = auth::sha256_hex(pending);
        let Some(s) = self.store.session(&hash, now, idle, absolute).await? else {
            return Ok(LoginOutcome::Refused);
        };
        let Some(admin) = self.store.admin(s.admin_id).await? else {
            return Ok(LoginOutcome::Refused);
        };
        let actor = Actor {
            name: admin.email.clone(),
            role: admin.role,
            client: client.to_owned(),
            admin_id: Some(admin.id),
        };
        if s.stage != SessionStage::Totp.as_str()
            || admin.locked_until > now
            || !self.take_code(&admin, code, now).await?
        {
            if admin.locked_until <= now {
                let locked = self.failed_attempt(admin.id, now).await?;
                if locked {
                    // A locked account's half-open sessions end too.
                    self.store.end_sessions_of(admin.id).await?;
                }
                let action = if locked {
                    "account_locked"
                } else {
                    "login_failed"
                };
                self.audit(&actor, action, "", "رمز التحقق بخطوتين").await;
            }
            return Ok(LoginOutcome::Refused);
        }
        self.store.login_succeeded(admin.id).await?;
        let session = NewSecret::session();
        self.store
            .start_session(
                &session.hash,
                admin.id,
                SessionStage::Full,
                Some(&hash),
                now,
                absolute,
            )
            .await?;
        self.audit(&actor, "login", "", "بالتحقق بخطوتين").await;
        Ok(LoginOutcome::Session(session))
    }

    /// Who a session cookie belongs to.
    pub async fn session(&self, cookie: &str, client: &str) -> anyhow::Result<SessionLookup> {
        if cookie.is_empty() || cookie.len() > 100 {
            return Ok(SessionLookup::None);
        }
        let (idle, absolute) = self.session_limits();
        let Some(s) = self
            .store
            .session(&auth::sha256_hex(cookie), now_ms(), idle, absolute)
            .await?
        else {
            return Ok(SessionLookup::None);
        };
        if s.stage != SessionStage::Full.as_str() {
            return Ok(SessionLookup::AwaitingCode);
        }
        Ok(SessionLookup::Full(Actor {
            name: s.email,
            role: s.role,
            client: client.to_owned(),
            admin_id: Some(s.admin_id),
        }))
    }

    pub async fn logout(&self, actor: &Actor, cookie: &str) -> anyhow::Result<()> {
        self.store.end_session(&auth::sha256_hex(cookie)).await?;
        self.audit(actor, "logout", "", "").await;
        Ok(())
    }

    /// Ends every session of the actor's account, this one included.
    pub async fn logout_everywhere(&self, actor: &Actor) -> anyhow::Result<u64> {
        let Some(id) = actor.admin_id else {
            return Ok(0);
        };
        let n = self.store.end_sessions_of(id).await?;
        self.audit(actor, "logout_all", "", format!("الجلسات: {n}"))
            .await;
        Ok(n)
    }

    /// Who a bearer token belongs to: the configuration's `admin_token` (an owner) or an
    /// API token made in the console (its role).
    pub async fn bearer(&self, token: &str, client: &str) -> anyhow::Result<Option<Actor>> {
        if token.is_empty() || token.len() > 200 {
            return Ok(None);
        }
        if let Some(admin) = &self.admin_token
            && admin.verify(token)
        {
            return Ok(Some(Actor {
                name: "admin_token".into(),
                role: Role::Owner,
                client: client.to_owned(),
                admin_id: None,
            }));
        }
        // Looked up by its SHA-256: the index finds it, and the hash of a wrong token says
        // nothing about the right one.
        Ok(self
            .store
            .api_token(&auth::sha256_hex(token), now_ms())
            .await?
            .map(|t| Actor {
                name: format!("token:{}", t.name),
                role: t.role,
                client: client.to_owned(),
                admin_id: None,
            }))
    }
}
