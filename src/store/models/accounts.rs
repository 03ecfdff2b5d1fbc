//! Console accounts, their roles and sessions, API tokens and the audit log.

use serde::Serialize;

use super::state::text_enum;

text_enum! {
    /// What a console account or an API token may do. Each role can do what the one before
    /// it can.
    pub enum Role {
        /// Reads everything.
        Viewer = "viewer",
        /// Also previews, tests, sends, pauses and cancels, and manages readers and articles.
        Editor = "editor",
        /// Also manages accounts and API tokens.
        Owner = "owner",
    }
}

impl Role {
    /// The role's name in the console and its audit log.
    pub fn arabic(self) -> &'static str {
        match self {
            Role::Viewer => "مطّلع",
            Role::Editor => "محرّر",
            Role::Owner => "مالك",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Editor => 1,
            Role::Owner => 2,
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }
}

/// A console account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub failed_logins: i64,
    pub locked_until: i64,
    pub created_at: i64,
}

/// A session's stage: a password alone opens only the second-factor step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    Totp,
    Full,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Totp => "totp",
            SessionStage::Full => "full",
        }
    }
}

/// A live session and the account it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionAdmin {
    pub admin_id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub stage: String,
    pub has_totp: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub hint: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client: String,
}

/// One entry for the audit log, written by the operation it records.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: String,
    pub client: String,
}
