//! Console accounts and API tokens: adding accounts, roles, passwords, the second factor and
//! its reset by an owner. Who may do what is checked here, whoever calls; a change to how an
//! account signs in asks for its password (or code) again.

use super::{
    App,
    ops::{Actor, OpError, Refusal},
    sign_in::account_key,
};
use crate::{
    auth::{self, NewSecret, totp},
    store::{Admin, ApiToken, Role, now_ms},
};

/// What a signed-in account must give again before a change to how it signs in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// The current password (the password form).
    Password,
    /// The password, or the current code when the account has a second factor.
    PasswordOrCode,
}

impl Proof {
    /// For the audit log: which form asked.
    fn describe(self) -> &'static str {
        match self {
            Proof::Password => "نموذج كلمة المرور",
            Proof::PasswordOrCode => "نموذج التحقق بخطوتين",
        }
    }
}

impl App {
    // ------------------------------------------------------------------ accounts

    /// Adds a console account. The command line does this for the first owner.
    pub async fn add_admin(
        &self,
        actor: &Actor,
        email: &str,
        role: Role,
        password: &str,
    ) -> Result<i64, OpError> {
        actor.require(Role::Owner)?;
        let email = account_key(email);
        crate::domain::SubscriberEmail::parse(&email)
            .map_err(|e| Refusal::BadAddress(e.to_string()))?;
        auth::check_new_password(password).map_err(Refusal::Password)?;
        let hash = auth::hash_password(password.to_owned()).await?;
        let id = self
            .store
            .add_admin(&email, role, &hash, now_ms())
            .await?
            .ok_or(Refusal::AccountExists)?;
        self.audit(
            actor,
            "account_add",
            format!("account:{id}"),
            format!("{email} بدور {}", role.arabic()),
        )
        .await;
        Ok(id)
    }

    /// Gives an account another role, or removes it (`None`). Its sessions end.
    pub async fn set_admin_role(
        &self,
        actor: &Actor,
        id: i64,
        role: Option<Role>,
    ) -> Result<(), OpError> {
        actor.require(Role::Owner)?;
        let admin = self
            .store
            .admin(id)
            .await?
            .ok_or(OpError::NotFound("account"))?;
        if !self.store.set_admin_role(id, role, now_ms()).await? {
            return Err(Refusal::LastOwner.into());
        }
        let (action, detail) = match role {
            Some(r) => (
                "account_role",
                format!(
                    "{}: من {} إلى {}",
                    admin.email,
                    admin.role.arabic(),
                    r.arabic()
                ),
            ),
            None => ("account_remove", admin.email.clone()),
        };
        self.audit(actor, action, format!("account:{id}"), detail)
            .await;
        Ok(())
    }

    /// Sets an account's password: one's own (the current one is asked for), or anyone's
    /// by an owner (or the command line). Every session of the account ends.
    pub async fn set_password(
        &self,
        actor: &Actor,
        email: &str,
        current: Option<&str>,
        new: &str,
    ) -> Result<(), OpError> {
        let admin = self
            .store
            .admin_by_email(&account_key(email))
            .await?
            .ok_or(OpError::NotFound("account"))?;
        if actor.admin_id == Some(admin.id) {
            self.reauthenticate(actor, &admin, current.unwrap_or_default(), Proof::Password)
                .await?;
        } else {
            actor.require(Role::Owner)?;
        }
        auth::check_new_password(new).map_err(Refusal::Password)?;
        let hash = auth::hash_password(new.to_owned()).await?;
        self.store.set_password(admin.id, &hash).await?;
        self.audit(
            actor,
            "password_set",
            format!("account:{}", admin.id),
            admin.email,
        )
        .await;
        Ok(())
    }

    /// Turns the actor's second factor on or changes it (`secret` and a code it makes), or
    /// off (`None`). Either way `proof` must be the account's password, or its current
    /// code when it has one: a session alone (a borrowed laptop, a stolen cookie) cannot
    /// put its own authenticator on the account, nor take the owner's away.
    pub async fn set_totp(
        &self,
        actor: &Actor,
        secret: Option<&str>,
        code: &str,
        proof: &str,
    ) -> Result<(), OpError> {
        let id = actor.admin_id.ok_or(OpError::Forbidden(Role::Viewer))?;
        let admin = self
            .store
            .admin(id)
            .await?
            .ok_or(OpError::NotFound("account"))?;
        self.reauthenticate(actor, &admin, proof, Proof::PasswordOrCode)
            .await?;
        let step = match secret {
            Some(s) => Some(totp::verify_step(s, code, now_ms() / 1000).ok_or(Refusal::BadCode)?),
            None => None,
        };
        self.store.set_totp(id, secret, step).await?;
        let action = match (secret, admin.totp_secret.is_some()) {
            (Some(_), false) => "totp_on",
            (Some(_), true) => "totp_change",
            (None, _) => "totp_off",
        };
        self.audit(actor, action, format!("account:{id}"), "").await;
        Ok(())
    }

    /// Takes away the second factor of an account whose owner lost it: an owner in the
    /// console (for another account: one's own is changed with proof on «حسابي») or the
    /// command line (`nashra admin totp-reset`). The account's sessions end. Returns
    /// whether it had one.
    pub async fn reset_totp(&self, actor: &Actor, email: &str) -> Result<bool, OpError> {
        actor.require(Role::Owner)?;
        let admin = self
            .store
            .admin_by_email(&account_key(email))
            .await?
            .ok_or(OpError::NotFound("account"))?;
        if actor.admin_id == Some(admin.id) {
            return Err(Refusal::OwnFactor.into());
        }
        let had = admin.totp_secret.is_some();
        self.store.reset_totp(admin.id).await?;
        let detail = if had {
            admin.email
        } else {
            format!("{} (لم يكن مفعّلاً)", admin.email)
        };
        self.audit(actor, "totp_reset", format!("account:{}", admin.id), detail)
            .await;
        Ok(had)
    }

    /// Whether `code` is the account's current code and was not used before; a right code
    /// is used up here (its step recorded), so it opens nothing a second time.
    pub(super) async fn take_code(
        &self,
        admin: &Admin,
        code: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let Some(secret) = admin.totp_secret.as_deref() else {
            return Ok(false);
        };
        match totp::verify_step(secret, code, now / 1000) {
            Some(step) => self.store.use_totp_step(admin.id, step).await,
            None => Ok(false),
        }
    }

    /// Asks a signed-in account to prove it is its owner again (the current password, or a
    /// code where `kind` allows it), counted like sign-in: `security.login_attempts` wrong
    /// answers in a row lock the account and end its sessions, so a stolen session cannot
    /// guess the password through these forms. Each failure is audited.
    async fn reauthenticate(
        &self,
        actor: &Actor,
        admin: &Admin,
        proof: &str,
        kind: Proof,
    ) -> Result<(), OpError> {
        let now = now_ms();
        let target = format!("account:{}", admin.id);
        let what = kind.describe();
        if admin.locked_until > now {
            self.audit(actor, "reauth_locked", target, what).await;
            return Err(Refusal::Locked.into());
        }
        let ok = if kind == Proof::PasswordOrCode
            && admin.totp_secret.is_some()
            && totp::looks_like_code(proof)
        {
            self.take_code(admin, proof, now).await?
        } else {
            let password: String = proof.chars().take(auth::MAX_PASSWORD).collect();
            auth::verify_password(Some(admin.password_hash.clone()), password).await
        };
        if ok {
            self.store.login_succeeded(admin.id).await?;
            return Ok(());
        }
        let locked = self.failed_attempt(admin.id, now).await?;
        if locked {
            self.store.end_sessions_of(admin.id).await?;
            self.audit(actor, "account_locked", target, what).await;
            return Err(Refusal::Locked.into());
        }
        self.audit(actor, "reauth_failed", target, what).await;
        Err(match kind {
            Proof::Password => Refusal::WrongPassword,
            Proof::PasswordOrCode => Refusal::WrongProof,
        }
        .into())
    }

    // ------------------------------------------------------------------ API tokens

    /// Makes an API token with `role`; the token is returned once and stored hashed.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
    ) -> Result<(i64, String), OpError> {
        actor.require(Role::Owner)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(Refusal::TokenName.into());
        }
        let t = NewSecret::api_token();
        let hint: String = t.value.chars().take(10).collect();
        let id = self
            .store
            .add_api_token(name, role, &t.hash, &hint, &actor.name, now_ms())
            .await?;
        self.audit(
            actor,
            "token_create",
            format!("token:{id}"),
            format!("{name} بدور {}", role.arabic()),
        )
        .await;
        Ok((id, t.value))
    }

    pub async fn revoke_api_token(&self, actor: &Actor, id: i64) -> Result<(), OpError> {
        actor.require(Role::Owner)?;
        let name = self
            .store
            .revoke_api_token(id, now_ms())
            .await?
            .ok_or(OpError::NotFound("token"))?;
        self.audit(actor, "token_revoke", format!("token:{id}"), name)
            .await;
        Ok(())
    }

    pub async fn api_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>, OpError> {
        actor.require(Role::Owner)?;
        Ok(self.store.api_tokens().await?)
    }
}
