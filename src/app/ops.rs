//! What editors and scripts do, each behind one door: the console, the API and the command
//! line call these, which check the caller's role and write the audit log.

use std::io::Read;

use bytes::Bytes;
use futures::Stream;

use super::{App, SendControl};
use crate::{
    auth::PasswordError,
    csv_io::{CsvImport, ImportRow},
    delivery::redact_addresses,
    domain::SubscriberEmail,
    store::{AuditRecord, DigestKind, DigestOutcome, DigestStatus, Progress, Role, now_ms},
};

/// Who is asking: a console account, an API token, the configuration's `admin_token`, or
/// the command line (which has the machine, so it is an owner).
#[derive(Debug, Clone)]
pub struct Actor {
    /// For the audit log: the account's address, `token:NAME`, `admin_token` or `cli`.
    pub name: String,
    pub role: Role,
    /// Where the request came from (the client's address), or `cli`.
    pub client: String,
    /// The account, when the actor is one.
    pub admin_id: Option<i64>,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            name: "cli".into(),
            role: Role::Owner,
            client: "cli".into(),
            admin_id: None,
        }
    }

    pub fn require(&self, needed: Role) -> Result<(), OpError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(OpError::Forbidden(needed))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("this needs the {0} role")]
    Forbidden(Role),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the send is {0}")]
    InvalidState(DigestStatus),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// A request that was understood and refused: the console says why in Arabic, the API and
/// the command line in English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no schedule named `{0}`")]
    UnknownSchedule(String),
    #[error("the last owner cannot be removed or given another role")]
    LastOwner,
    #[error("an account with this address exists")]
    AccountExists,
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("not a valid address: {0}")]
    BadAddress(String),
    #[error("the CSV cannot be read: {0}")]
    Csv(String),
    #[error("the code is not the one the authenticator shows now")]
    BadCode,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("neither the current password nor the current code")]
    WrongProof,
    #[error("the account is locked for a while after too many wrong answers")]
    Locked,
    #[error("an account's own second factor is changed from its own page, with proof")]
    OwnFactor,
    #[error("a token needs a name of 1 to 60 characters")]
    TokenName,
    #[error("give 1 to 10 addresses for a test send")]
    TestAddresses,
    #[error("this would send the digest to every confirmed reader: confirm it first")]
    NotConfirmed,
    #[error("the alert is {0}: it can no longer be {1}")]
    AlertState(crate::store::AlertStatus, &'static str),
    /// A value the editor's desk or a subject test cannot take: said in English for the API
    /// and in Arabic for the console.
    #[error("{en}")]
    Desk { en: String, ar: String },
    #[error(transparent)]
    Plan(#[from] super::planned::PlanRefusal),
}

impl Refusal {
    pub fn arabic(&self) -> String {
        match self {
            Refusal::UnknownSchedule(n) => format!("لا يوجد جدول باسم «{n}»."),
            Refusal::LastOwner => "لا يمكن حذف آخر مالك أو تغيير دوره: أضف مالكاً آخر أولاً.".into(),
            Refusal::AccountExists => "يوجد حساب بهذا العنوان.".into(),
            Refusal::Password(PasswordError::TooShort) => {
                "كلمة المرور قصيرة: 12 حرفاً على الأقل.".into()
            }
            Refusal::Password(PasswordError::TooLong) => {
                "كلمة المرور طويلة: 1024 حرفاً على الأكثر.".into()
            }
            Refusal::BadAddress(_) => "عنوان البريد الإلكتروني غير صالح.".into(),
            Refusal::Csv(e) => format!("تعذّرت قراءة ملف CSV: {e}"),
            Refusal::BadCode => "الرمز غير صحيح. أدخل الرمز الظاهر الآن في تطبيق المصادقة.".into(),
            Refusal::WrongPassword => "كلمة المرور الحالية غير صحيحة.".into(),
            Refusal::WrongProof => {
                "لم نتحقق منك: اكتب كلمة المرور الحالية أو الرمز الظاهر الآن في تطبيق المصادقة."
                    .into()
            }
            Refusal::Locked => {
                "قُفل الحساب مؤقتاً بعد محاولات خاطئة كثيرة، وانتهت جلساته. سجّل الدخول لاحقاً.".into()
            }
            Refusal::OwnFactor => {
                "غيّر التحقق بخطوتين في حسابك من صفحة «حسابي»، بكلمة المرور أو بالرمز الحالي.".into()
            }
            Refusal::TokenName => "اكتب اسماً للمفتاح (من 1 إلى 60 حرفاً).".into(),
            Refusal::TestAddresses => "اكتب عنواناً واحداً على الأقل وعشرة على الأكثر.".into(),
            Refusal::NotConfirmed => {
                "لم يُرسَل شيء: أكّد أولاً أنك تريد الإرسال إلى كل القرّاء المؤكَّدين.".into()
            }
            Refusal::AlertState(crate::store::AlertStatus::Sent, _) => {
                "انطلق هذا التنبيه: أوقفه من صفحة إرساله إن لزم.".into()
            }
            Refusal::AlertState(crate::store::AlertStatus::Cancelled, _) => {
                "أُلغي هذا التنبيه من قبل.".into()
            }
            Refusal::AlertState(..) => "لا يمكن ذلك في حال التنبيه الآن.".into(),
            Refusal::Desk { ar, .. } => ar.clone(),
            Refusal::Plan(p) => p.arabic(),
        }
    }
}

/// What an import did, with the first rejected rows and why.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub added: u64,
    pub known: u64,
    pub rejected: u64,
    /// (line, reason), the first [`ImportReport::MAX_ERRORS`] of them.
    pub errors: Vec<(u64, crate::csv_io::RowError)>,
    /// Rows imported without the name they gave, because it failed the name check.
    pub unnamed: u64,
    /// (line, the name left out), the first [`ImportReport::MAX_ERRORS`] of them.
    pub names: Vec<(u64, crate::csv_io::NameLeftEmpty)>,
    /// Rows imported in the newsroom's time zone, because theirs is not an IANA zone.
    pub unzoned: u64,
    /// (line, the zone left out), the first [`ImportReport::MAX_ERRORS`] of them.
    pub zones: Vec<(u64, crate::csv_io::ZoneLeftOut)>,
    /// Where the file stopped being CSV, if it did: the rows before it are in.
    pub stopped: Option<String>,
}

impl ImportReport {
    pub const MAX_ERRORS: usize = 1000;
}

impl App {
    /// Writes an audit entry. The operation it records has happened: a failure to write it
    /// is logged, not turned into the operation's failure.
    pub(crate) async fn audit(
        &self,
        actor: &Actor,
        action: &'static str,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let r = AuditRecord {
            actor: actor.name.clone(),
            action,
            target: target.into(),
            detail: detail.into(),
            client: actor.client.clone(),
        };
        if let Err(e) = self.store.audit(&r, now_ms()).await {
            tracing::error!(action, error = %format!("{e:#}"), "audit entry not written");
        }
    }

    pub(super) fn schedule_named(
        &self,
        name: Option<&str>,
    ) -> Result<&crate::config::Schedule, OpError> {
        self.settings
            .schedule(name)
            .map_err(|_| Refusal::UnknownSchedule(name.unwrap_or_default().to_owned()).into())
    }

    /// Starts a send of `schedule`'s new articles to every confirmed reader, or a test send
    /// to the addresses in `test_to` (one send, whatever their number).
    pub async fn start_send(
        &self,
        actor: &Actor,
        schedule: Option<&str>,
        test_to: &[SubscriberEmail],
    ) -> Result<DigestOutcome, OpError> {
        actor.require(Role::Editor)?;
        let schedule = self.schedule_named(schedule)?;
        let kind = if test_to.is_empty() {
            DigestKind::Manual
        } else {
            DigestKind::Test
        };
        let out = self
            .create_digest_by(
                schedule,
                kind,
                None,
                test_to,
                super::asked::Asked {
                    by: Some(&actor.name),
                    ..Default::default()
                },
            )
            .await?;
        if let DigestOutcome::Created { id, recipients } = out {
            let (action, detail) = if test_to.is_empty() {
                ("send_start", format!("عدد القرّاء: {recipients}"))
            } else {
                let to: Vec<String> = test_to
                    .iter()
                    .map(|t| redact_addresses(t.as_str()))
                    .collect();
                ("send_test", format!("إلى: {}", to.join("، ")))
            };
            let detail = format!("{} — {detail}", schedule.label);
            self.audit(actor, action, format!("send:{id}"), detail)
                .await;
        }
        Ok(out)
    }

    /// Pauses, resumes, cancels or retries a send.
    pub async fn control(
        &self,
        actor: &Actor,
        id: i64,
        control: SendControl,
    ) -> Result<(Progress, u64), OpError> {
        actor.require(Role::Editor)?;
        let (p, requeued) = self.control_send(id, control).await?;
        let (action, detail) = match control {
            SendControl::Pause => ("send_pause", String::new()),
            SendControl::Resume => ("send_resume", String::new()),
            SendControl::Cancel => ("send_cancel", String::new()),
            SendControl::Retry => ("send_retry", format!("أُعيد إلى الإرسال: {requeued}")),
        };
        self.audit(actor, action, format!("send:{id}"), detail)
            .await;
        Ok((p, requeued))
    }

    /// An editor unsubscribes a reader (a complaint by phone, a request by letter).
    pub async fn unsubscribe_reader(&self, actor: &Actor, id: i64) -> Result<bool, OpError> {
        actor.require(Role::Editor)?;
        self.store
            .subscriber(id)
            .await?
            .ok_or(OpError::NotFound("reader"))?;
        let changed = self
            .unsubscribe(id, &format!("editor:{}", actor.name))
            .await?;
        if changed {
            self.audit(actor, "reader_unsubscribe", format!("reader:{id}"), "")
                .await;
        }
        Ok(changed)
    }

    /// GDPR erasure of a reader, by id. The audit log keeps only the number.
    pub async fn erase_reader(&self, actor: &Actor, id: i64) -> Result<(), OpError> {
        actor.require(Role::Editor)?;
        if !self.erase(id).await? {
            return Err(OpError::NotFound("reader"));
        }
        self.audit(actor, "reader_erase", format!("reader:{id}"), "")
            .await;
        Ok(())
    }

    /// GDPR erasure of a reader, by address.
    pub async fn erase_address(
        &self,
        actor: &Actor,
        email: &SubscriberEmail,
    ) -> Result<(), OpError> {
        actor.require(Role::Editor)?;
        let id = self
            .store
            .subscriber_id_by_email(email)
            .await?
            .ok_or(OpError::NotFound("reader"))?;
        self.erase_reader(actor, id).await
    }

    /// Imports readers from CSV (header `email,name`, optionally `timezone`), committing the good rows in chunks
    /// (a million rows need no more memory than fifty thousand; re-running an interrupted
    /// import is safe: known addresses are left alone). Parsing runs on a blocking thread.
    pub async fn import_csv<R: Read + Send + 'static>(
        &self,
        actor: &Actor,
        input: R,
        confirmed: bool,
        label: &str,
    ) -> Result<ImportReport, OpError> {
        actor.require(Role::Editor)?;
        const CHUNK: usize = 50_000;
        let mut csv = tokio::task::spawn_blocking(move || CsvImport::new(input))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|e| Refusal::Csv(format!("{e:#}")))?;
        let source = if label.is_empty() {
            "import".to_owned()
        } else {
            format!("import:{}", label.chars().take(100).collect::<String>())
        };
        let mut report = ImportReport::default();
        loop {
            let (back, chunk, bad, (names, zones), end) = tokio::task::spawn_blocking(move || {
                let mut chunk: Vec<ImportRow> = Vec::with_capacity(CHUNK);
                let (mut bad, mut names, mut zones) = (Vec::new(), Vec::new(), Vec::new());
                let end = loop {
                    match csv.next_row() {
                        Ok(Some((line, Ok((r, left))))) => {
                            chunk.push(r);
                            if let Some(name) = left.name {
                                names.push((line, name));
                            }
                            if let Some(zone) = left.zone {
                                zones.push((line, zone));
                            }
                        }
                        Ok(Some((line, Err(why)))) => bad.push((line, why)),
                        Ok(None) => break Ok(true),
                        Err(e) => break Err(e),
                    }
                    if chunk.len() >= CHUNK {
                        break Ok(false);
                    }
                };
                (csv, chunk, bad, (names, zones), end)
            })
            .await
            .map_err(anyhow::Error::from)?;
            csv = back;
            report.rejected += bad.len() as u64;
            let room = ImportReport::MAX_ERRORS.saturating_sub(report.errors.len());
            report.errors.extend(bad.into_iter().take(room));
            report.unnamed += names.len() as u64;
            let room = ImportReport::MAX_ERRORS.saturating_sub(report.names.len());
            report.names.extend(names.into_iter().take(room));
            report.unzoned += zones.len() as u64;
            let room = ImportReport::MAX_ERRORS.saturating_sub(report.zones.len());
            report.zones.extend(zones.into_iter().take(room));
            if !chunk.is_empty() {
                let (a, k) = self.store.import(&chunk, confirmed, &source).await?;
                report.added += a;
                report.known += k;
            }
            match end {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    // The good rows before the malformed one are in; say where it stopped.
                    report.stopped = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        self.audit_import(actor, &report, confirmed).await;
        Ok(report)
    }

    async fn audit_import(&self, actor: &Actor, r: &ImportReport, confirmed: bool) {
        let detail = format!(
            "أُضيف: {}، موجود من قبل: {}، رُفض: {}{}",
            r.added,
            r.known,
            r.rejected,
            if confirmed { "، مؤكَّدون" } else { "" }
        );
        self.audit(actor, "import", "", detail).await;
    }

    /// Every reader as CSV, a page at a time, for a file or an HTTP response.
    pub async fn export_csv(
        &self,
        actor: &Actor,
    ) -> Result<impl Stream<Item = anyhow::Result<Bytes>> + Send + 'static, OpError> {
        actor.require(Role::Editor)?;
        self.audit(actor, "export", "", "").await;
        let store = self.store.clone();
        let header = {
            let mut w = crate::csv_io::export_writer(Vec::new())?;
            w.flush().map_err(anyhow::Error::from)?;
            w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?
        };
        let first = futures::stream::once(async move { Ok(Bytes::from(header)) });
        let pages = futures::stream::try_unfold(0i64, move |after| {
            let store = store.clone();
            async move {
                let page = store.subscribers_after(after, 10_000).await?;
                let Some(last) = page.last().map(|s| s.id) else {
                    return Ok(None);
                };
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::with_capacity(page.len() * 80));
                for s in &page {
                    crate::csv_io::export_row(&mut w, s)?;
                }
                let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(Some((Bytes::from(bytes), last)))
            }
        });
        use futures::StreamExt;
        Ok(first.chain(pages))
    }

    /// A page of readers for a script (`GET /api/subscribers`): the same people the CSV
    /// export gives, so the same role (editor) and an audit entry per page. The search text
    /// is not kept (it may be an address), only that there was one.
    pub async fn list_readers(
        &self,
        actor: &Actor,
        filter: &crate::store::ReaderFilter,
        page: i64,
        per_page: i64,
    ) -> Result<(Vec<crate::store::SubscriberRow>, i64), OpError> {
        actor.require(Role::Editor)?;
        let (rows, total) = self.store.list_subscribers(filter, page, per_page).await?;
        let mut detail = format!("الصفحة {page}، عدد القرّاء: {}", rows.len());
        if let Some(s) = filter.status {
            detail.push_str(&format!("، الحالة: {}", s.as_str()));
        }
        if filter.q.is_some() {
            detail.push_str("، مع بحث");
        }
        self.audit(actor, "readers_list", "", detail).await;
        Ok((rows, total))
    }

    /// An article a script pushes (`POST /api/articles`): editors only, audited.
    pub async fn push_article(
        &self,
        actor: &Actor,
        article: crate::store::NewArticle,
    ) -> Result<(i64, bool), OpError> {
        actor.require(Role::Editor)?;
        let (id, new) = self.add_article(article.clone()).await?;
        if let Err(e) = self
            .consider_alert(id, article.urgent, &article.categories)
            .await
        {
            // The article is stored; its alert is tried again when it arrives again.
            tracing::error!(article = id, error = %format!("{e:#}"), "cannot make the article's alert");
        }
        let detail = if new {
            "جديد"
        } else {
            "معروف من قبل"
        };
        self.audit(actor, "article_push", format!("article:{id}"), detail)
            .await;
        Ok((id, new))
    }

    /// Polls every feed now (`POST /api/ingest`): editors only, audited with the counts.
    pub async fn ingest_now(&self, actor: &Actor) -> Result<crate::feeds::IngestReport, OpError> {
        actor.require(Role::Editor)?;
        let r = self.ingest_all().await;
        let detail = format!(
            "الخلاصات: {}، جديد: {}، مُحدَّث: {}، تعذّر: {}",
            r.feeds, r.new, r.updated, r.failed
        );
        self.audit(actor, "ingest", "", detail).await;
        Ok(r)
    }

    /// Takes an article out of a schedule's coming digest, or puts it back.
    pub async fn exclude_article(
        &self,
        actor: &Actor,
        schedule: &str,
        article: i64,
        exclude: bool,
    ) -> Result<bool, OpError> {
        actor.require(Role::Editor)?;
        let schedule = &self.schedule_named(Some(schedule))?.name;
        let changed = self
            .store
            .exclude_article(schedule, article, exclude, &actor.name, now_ms())
            .await?;
        if changed {
            let action = if exclude {
                "article_exclude"
            } else {
                "article_include"
            };
            self.audit(
                actor,
                action,
                format!("article:{article}"),
                schedule.clone(),
            )
            .await;
        }
        Ok(changed)
    }

    /// Pauses a schedule (its slots pass without a digest) or resumes it.
    pub async fn pause_schedule(
        &self,
        actor: &Actor,
        schedule: &str,
        paused: bool,
    ) -> Result<(), OpError> {
        actor.require(Role::Editor)?;
        let schedule = &self.schedule_named(Some(schedule))?.name;
        self.store.set_schedule_paused(schedule, paused).await?;
        let action = if paused {
            "schedule_pause"
        } else {
            "schedule_resume"
        };
        self.audit(actor, action, format!("schedule:{schedule}"), "")
            .await;
        Ok(())
    }
}
