//! A send's report: what became of its messages, per edition and address domain.

/// One edition's messages to one address domain (see `store::report`).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRow {
    pub edition: i64,
    /// Lower-case A-label; `None` for rows whose reader was erased (or a test send's).
    pub domain: Option<String>,
    /// The relay took it ("sent" in the ledger).
    pub delivered: i64,
    /// It could not be sent ("failed").
    pub failed: i64,
    /// A permanent bounce came back after the relay took it.
    pub bounced: i64,
    /// The reader marked it as spam.
    pub complained: i64,
    /// The reader left after it reached them, before anything else from us did.
    pub unsubscribed: i64,
}
