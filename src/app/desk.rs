//! The editor's desk: a schedule's next digest as an editor shapes it (subject, «كلمة
//! التحرير», lead story, order, exclusions, a subject test), and subject tests decided by
//! readers' clicks. What is set applies to the next real digest of the schedule and then
//! clears (the store takes it in the digest's own transaction).

use std::collections::HashSet;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Actor, App, OpError, Refusal};
use crate::{
    config::{Deliver, Schedule},
    domain::SubjectTemplate,
    render::{MAX_NOTE, Shaping, calendar, note_for_editing, sanitize_note},
    store::{
        Article, Desk, DigestKind, DigestOutcome, ExcludedArticle, Role, StoredDesk, SubjectTest,
        SubjectTestRow, now_ms, sample_size,
    },
};

/// The desk as the console and `GET /api/schedules/{name}/next` show it.
#[derive(Debug, Serialize)]
pub struct DeskView {
    pub schedule: String,
    pub label: String,
    /// The next slot, RFC 3339.
    pub next_at: Option<String>,
    /// What the schedule's subject template gives today.
    pub default_subject: String,
    /// The editor's subject template, if set.
    pub subject: Option<String>,
    pub note_html: Option<String>,
    /// The note as the console's form shows it for editing.
    pub note_edit: Option<String>,
    pub lead: Option<i64>,
    /// The next digest's articles, in the order they will go (the lead first).
    pub order: Vec<i64>,
    pub articles: Vec<DeskArticle>,
    pub excluded: Vec<i64>,
    /// The same, with their titles and who took each out.
    pub excluded_articles: Vec<ExcludedArticle>,
    pub subject_test: Option<SubjectTest>,
    pub updated_by: Option<String>,
    pub updated_at: Option<i64>,
    /// Whether subject tests can run (`newsletter.click_counts`).
    pub tests_possible: bool,
}

#[derive(Debug, Serialize)]
pub struct DeskArticle {
    pub id: i64,
    pub title: String,
    pub url: String,
    pub at: i64,
    pub lead: bool,
}

/// A change to the desk: a field left out stays as it is; `null` clears it (an empty
/// `excluded` includes everything again).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskChange {
    #[serde(default, with = "serde_with_null")]
    pub subject: Option<Option<String>>,
    #[serde(default, with = "serde_with_null")]
    pub note_html: Option<Option<String>>,
    #[serde(default, with = "serde_with_null")]
    pub lead: Option<Option<i64>>,
    #[serde(default, with = "serde_with_null")]
    pub order: Option<Option<Vec<i64>>>,
    #[serde(default)]
    pub excluded: Option<Vec<i64>>,
    #[serde(default, with = "serde_with_null")]
    pub subject_test: Option<Option<SubjectTestIn>>,
}

/// "Absent" and "null" told apart: `Some(None)` is an explicit null.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A subject test as an editor asks for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectTestIn {
    pub subjects: Vec<String>,
    /// Each subject's sample, in percent of the audience (default 10).
    pub sample_percent: Option<u32>,
    /// The fewest readers a sample may have (default 1,000).
    pub min_sample: Option<u32>,
    /// How long clicks are counted before the winner is chosen, e.g. "60m" (default 60 min).
    pub wait: Option<String>,
}

fn refused(en: impl Into<String>, ar: impl Into<String>) -> OpError {
    Refusal::Desk {
        en: en.into(),
        ar: ar.into(),
    }
    .into()
}

/// `articles` in the editor's order: the lead first, then the ids `order` names, then the
/// rest as they came (newest first). Ids that are not among them are passed over.
pub(crate) fn arrange(mut articles: Vec<Article>, desk: &Desk) -> Vec<Article> {
    let mut out = Vec::with_capacity(articles.len());
    for id in desk.lead.iter().chain(&desk.order) {
        if let Some(i) = articles.iter().position(|a| a.id == *id) {
            out.push(articles.remove(i));
        }
    }
    out.extend(articles);
    out
}

/// The renderer's part of a desk.
pub(crate) fn shaping(desk: &Desk) -> Shaping {
    Shaping {
        subject: desk.subject.clone(),
        note_html: desk.note_html.clone(),
        lead: desk.lead,
    }
}

impl App {
    /// The desk of `schedule`'s next digest.
    pub async fn next_digest_view(
        &self,
        actor: &Actor,
        schedule: &str,
    ) -> Result<DeskView, OpError> {
        actor.require(Role::Viewer)?;
        let schedule = self.schedule_named(Some(schedule))?;
        let stored = self.store.next_digest(&schedule.name).await?;
        self.desk_view(schedule, stored).await
    }

    async fn desk_view(
        &self,
        schedule: &Schedule,
        stored: Option<StoredDesk>,
    ) -> Result<DeskView, OpError> {
        let desk = stored.as_ref().map(|s| s.desk.clone()).unwrap_or_default();
        let articles = arrange(self.preview_articles(schedule).await?, &desk);
        let n = &self.settings.newsletter;
        let today = Utc::now()
            .with_timezone(&schedule.cron.timezone())
            .date_naive();
        let excluded = self.store.excluded_articles(&schedule.name).await?;
        let default_subject = schedule.subject.render(
            &calendar::date_line(today, n.calendar, n.digits),
            &calendar::date_short(today, n.calendar, n.digits),
        )?;
        Ok(DeskView {
            schedule: schedule.name.clone(),
            label: schedule.label.clone(),
            next_at: schedule.cron.next_after(Utc::now()).map(|t| t.to_rfc3339()),
            default_subject,
            subject: desk.subject.clone(),
            note_html: desk.note_html.clone(),
            note_edit: desk.note_html.as_deref().map(note_for_editing),
            lead: desk
                .lead
                .filter(|l| articles.first().is_some_and(|a| a.id == *l)),
            order: articles.iter().map(|a| a.id).collect(),
            articles: articles
                .iter()
                .map(|a| DeskArticle {
                    id: a.id,
                    title: a.title.clone(),
                    url: a.url.clone(),
                    at: a.published_at.unwrap_or(a.arrived_at),
                    lead: desk.lead == Some(a.id),
                })
                .collect(),
            excluded: excluded.iter().map(|e| e.id).collect(),
            excluded_articles: excluded,
            subject_test: desk.subject_test.clone(),
            updated_by: stored.as_ref().map(|s| s.updated_by.clone()),
            updated_at: stored.as_ref().map(|s| s.updated_at),
            tests_possible: n.click_counts,
        })
    }

    /// Changes what `schedule`'s next digest carries; audited.
    pub async fn shape_next_digest(
        &self,
        actor: &Actor,
        schedule: &str,
        change: DeskChange,
    ) -> Result<DeskView, OpError> {
        actor.require(Role::Editor)?;
        let schedule = self.schedule_named(Some(schedule))?;
        let stored = self.store.next_digest(&schedule.name).await?;
        let mut desk = stored.map(|s| s.desk).unwrap_or_default();
        let new: HashSet<i64> = self
            .preview_articles(schedule)
            .await?
            .iter()
            .map(|a| a.id)
            .collect();
        let mut what = Vec::new();
        if let Some(subject) = change.subject {
            desk.subject = match subject.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) => Some(check_subject(s)?),
            };
            what.push("العنوان");
        }
        if let Some(note) = change.note_html {
            let note = note.unwrap_or_default();
            if note.chars().count() > MAX_NOTE {
                return Err(refused(
                    format!("note_html: at most {MAX_NOTE} characters"),
                    format!("كلمة التحرير طويلة: {MAX_NOTE} حرف على الأكثر."),
                ));
            }
            let clean = sanitize_note(&note);
            desk.note_html = (!clean.is_empty()).then_some(clean);
            what.push("كلمة التحرير");
        }
        if let Some(lead) = change.lead {
            if let Some(id) = lead.filter(|id| !new.contains(id)) {
                return Err(refused(
                    format!("lead: article {id} is not in the next digest"),
                    "الخبر الرئيسي ليس بين مقالات النشرة القادمة.",
                ));
            }
            desk.lead = lead;
            what.push("الخبر الرئيسي");
        }
        if let Some(order) = change.order {
            let order = order.unwrap_or_default();
            let mut seen = HashSet::new();
            if let Some(id) = order
                .iter()
                .find(|id| !new.contains(id) || !seen.insert(**id))
            {
                return Err(refused(
                    format!("order: article {id} is repeated or not in the next digest"),
                    "الترتيب يذكر مقالاً مكرراً أو ليس في النشرة القادمة.",
                ));
            }
            desk.order = order;
            what.push("الترتيب");
        }
        if let Some(test) = change.subject_test {
            if test.is_some() && schedule.deliver == Deliver::Local {
                return Err(refused(
                    "subject_test: a deliver = \"local\" schedule reaches each reader at their own hour; its rest cannot wait for a winner",
                    "هذا الجدول يصل كل قارئ في ساعته المحلية، فلا يمكن أن ينتظر باقي القرّاء نتيجة اختبار العنوان.",
                ));
            }
            desk.subject_test = test.map(|t| self.subject_test_of(t)).transpose()?;
            what.push("اختبار العنوان");
        }
        if let Some(excluded) = change.excluded {
            let now: HashSet<i64> = self
                .store
                .excluded_articles(&schedule.name)
                .await?
                .iter()
                .map(|e| e.id)
                .collect();
            let wanted: HashSet<i64> = excluded.iter().copied().collect();
            if let Some(id) = wanted
                .iter()
                .find(|id| !new.contains(id) && !now.contains(id))
            {
                return Err(refused(
                    format!("excluded: article {id} is not in the next digest"),
                    "لا يمكن استبعاد مقال ليس في النشرة القادمة.",
                ));
            }
            for id in wanted.symmetric_difference(&now) {
                self.exclude_article(actor, &schedule.name, *id, wanted.contains(id))
                    .await?;
            }
        }
        if !what.is_empty() {
            self.store
                .set_next_digest(&schedule.name, &desk, &actor.name, now_ms())
                .await?;
            let detail = format!("{} — {}", schedule.label, what.join("، "));
            self.audit(
                actor,
                "next_digest",
                format!("schedule:{}", schedule.name),
                detail,
            )
            .await;
        }
        self.next_digest_view(actor, &schedule.name).await
    }

    /// A subject test as asked, checked: 2 to 4 subjects, samples that leave a rest, a wait
    /// of 1 minute to 2 days, and clicks counted.
    pub(crate) fn subject_test_of(&self, t: SubjectTestIn) -> Result<SubjectTest, OpError> {
        if !self.settings.newsletter.click_counts {
            return Err(refused(
                "a subject test chooses by clicks: set newsletter.click_counts = true",
                "يختار اختبار العنوان الفائز بالنقرات، وعدّ النقرات متوقف (newsletter.click_counts).",
            ));
        }
        let subjects: Vec<String> = t
            .subjects
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(check_subject)
            .collect::<Result<_, _>>()?;
        if !(2..=4).contains(&subjects.len()) {
            return Err(refused(
                "subject_test: give 2 to 4 subjects",
                "اكتب عنوانين إلى أربعة عناوين للاختبار.",
            ));
        }
        let sample_percent = t.sample_percent.unwrap_or(10);
        if sample_percent == 0 || sample_percent as usize * subjects.len() >= 100 {
            return Err(refused(
                "subject_test: sample_percent × subjects must be above 0 and under 100",
                "نسبة العينة مضروبة في عدد العناوين يجب أن تكون أقل من ١٠٠٪.",
            ));
        }
        let wait = match t.wait.as_deref() {
            None => std::time::Duration::from_secs(3600),
            Some(w) => humantime::parse_duration(w).map_err(|e| {
                refused(
                    format!("subject_test.wait: {e}"),
                    "مدة الانتظار غير مفهومة (مثال: 60m).",
                )
            })?,
        };
        if wait < std::time::Duration::from_secs(60)
            || wait > std::time::Duration::from_secs(2 * 86400)
        {
            return Err(refused(
                "subject_test.wait: from 1 minute to 2 days",
                "مدة الانتظار من دقيقة إلى يومين.",
            ));
        }
        Ok(SubjectTest {
            subjects,
            sample_percent,
            min_sample: t.min_sample.unwrap_or(1000).max(1),
            wait_ms: wait.as_millis() as i64,
        })
    }

    /// Starts a send of `schedule` with a subject test; refused when the audience is too
    /// small for the samples to leave a rest.
    pub async fn start_send_tested(
        &self,
        actor: &Actor,
        schedule: Option<&str>,
        test: SubjectTestIn,
    ) -> Result<DigestOutcome, OpError> {
        actor.require(Role::Editor)?;
        let schedule = self.schedule_named(schedule)?;
        let test = self.subject_test_of(test)?;
        let total = self.send_audience(schedule).await?.total;
        let per = sample_size(total, &test);
        let k = test.subjects.len() as i64;
        if per * k >= total {
            return Err(refused(
                format!(
                    "subject_test: {total} readers cannot give {k} samples of {per} and leave a rest; lower min_sample or send without a test"
                ),
                format!(
                    "الجمهور ({total}) أصغر من أن يُقسم إلى {k} عينات من {per} قارئ ويبقى له باقٍ: قلّل الحد الأدنى للعينة أو أرسل دون اختبار."
                ),
            ));
        }
        let out = self
            .create_digest_by(
                schedule,
                DigestKind::Manual,
                None,
                &[],
                super::asked::Asked {
                    by: Some(&actor.name),
                    subject_test: Some(&test),
                    plan: None,
                },
            )
            .await?;
        if let DigestOutcome::Created { id, recipients } = out {
            let detail = format!(
                "{} — عدد القرّاء: {recipients}، اختبار {k} عناوين",
                schedule.label
            );
            self.audit(actor, "send_start", format!("send:{id}"), detail)
                .await;
        }
        Ok(out)
    }

    /// A send's subject test as it stands, if it has one.
    pub async fn subject_test_results(&self, id: i64) -> anyhow::Result<Option<SubjectTestRow>> {
        self.store.subject_test(id).await
    }

    /// Chooses the winner of every test whose wait is over and releases the rest of its
    /// audience; the scheduler's loop calls this. Returns how many were decided here.
    pub async fn decide_subject_tests(&self) -> anyhow::Result<usize> {
        let mut decided = 0;
        for id in self.store.due_subject_tests(now_ms()).await? {
            let Some(test) = self.store.subject_test(id).await? else {
                continue;
            };
            let (winner, note) = choose(&test);
            let subject = &test.subjects[winner].subject;
            if self
                .store
                .decide_subject_test(id, winner as i64, subject, note, now_ms())
                .await?
            {
                tracing::info!(digest = id, winner, note, "subject test decided");
                decided += 1;
                self.dispatcher.wake.notify_one();
            }
        }
        Ok(decided)
    }
}

/// An editor's subject, whitespace folded to one line (see [`SubjectTemplate::editors`]).
fn check_subject(s: &str) -> Result<String, OpError> {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    SubjectTemplate::editors(&one_line).map_err(|why| {
        refused(
            format!("subject: {why}"),
            format!(
                "العنوان غير مقبول: سطر واحد حتى {} حرف، ولا رموز فيه إلا {{{{ date }}}} و{{{{ date_short }}}}.",
                SubjectTemplate::MAX_EDITORS
            ),
        )
    })?;
    Ok(one_line)
}

/// The winner of a test and why: the most distinct readers who clicked (the first subject
/// on a tie); whether the lead over the runner-up is significant is a two-proportion z-test
/// at 95 % on the clickers over the messages sent.
pub(crate) fn choose(test: &SubjectTestRow) -> (usize, &'static str) {
    let s = &test.subjects;
    let mut best = 0;
    for (i, r) in s.iter().enumerate() {
        if r.clicked > s[best].clicked {
            best = i;
        }
    }
    if s[best].clicked == 0 {
        return (0, "no_clicks");
    }
    let second = s
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != best)
        .max_by_key(|(i, r)| (r.clicked, std::cmp::Reverse(*i)))
        .map(|(_, r)| r)
        .expect("two subjects at least");
    if second.clicked == s[best].clicked {
        return (best, "tie");
    }
    if significant(s[best].clicked, s[best].sent, second.clicked, second.sent) {
        (best, "significant")
    } else {
        (best, "not_significant")
    }
}

/// Whether `c1` of `n1` and `c2` of `n2` differ at 95 % (two-sided two-proportion z-test).
fn significant(c1: i64, n1: i64, c2: i64, n2: i64) -> bool {
    if n1 == 0 || n2 == 0 {
        return false;
    }
    let (c1, n1, c2, n2) = (c1 as f64, n1 as f64, c2 as f64, n2 as f64);
    let p = (c1 + c2) / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    se > 0.0 && ((c1 / n1 - c2 / n2) / se).abs() > 1.96
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(results: &[(i64, i64)]) -> SubjectTestRow {
        let mut t = SubjectTestRow::new(
            results.iter().map(|_| "s".to_owned()).collect(),
            0,
            None,
            None,
        );
        for (s, (sent, clicked)) in t.subjects.iter_mut().zip(results) {
            (s.readers, s.sent, s.clicked) = (*sent, *sent, *clicked);
        }
        t
    }

    #[test]
    fn the_most_clickers_win_and_the_note_says_how_sure() {
        assert_eq!(
            choose(&row(&[(300, 5), (300, 60), (300, 4)])),
            (1, "significant")
        );
        assert_eq!(
            choose(&row(&[(1000, 50), (1000, 55)])),
            (1, "not_significant")
        );
        assert_eq!(choose(&row(&[(300, 7), (300, 7), (300, 2)])), (0, "tie"));
        assert_eq!(choose(&row(&[(300, 0), (300, 0)])), (0, "no_clicks"));
        // The runner-up counts, not the last: 40 vs 38 is close whatever the third did.
        assert_eq!(
            choose(&row(&[(500, 40), (500, 0), (500, 38)])),
            (0, "not_significant")
        );
    }

    #[test]
    fn significance_is_the_two_proportion_test() {
        // 10 % vs 5 % of 1,000 each: z ≈ 4.2.
        assert!(significant(100, 1000, 50, 1000));
        // 10 % vs 8 % of 300 each: z ≈ 0.85.
        assert!(!significant(30, 300, 24, 300));
        assert!(!significant(0, 0, 0, 10));
    }
}
