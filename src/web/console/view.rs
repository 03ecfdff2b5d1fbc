//! The console's templates, their filters (numbers and times as the newsroom writes them,
//! Arabic labels for states), the layout every page shares, and the two static files.
//!
//! A little over 500 lines, thirty of them tests: the filters and the labels are what the
//! templates name, and are easiest to keep in step beside the list of templates.

use std::{collections::HashMap, sync::LazyLock};

use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{TimeZone, Utc};
use serde_json::Value;
use tera::{Context, Tera};

use crate::{
    app::{Actor, App},
    config::Digits,
    render::{arabic_date, arabic_date_time},
    store::{ALERT_SCHEDULE, ConsentEvent, DigestKind, DigestStatus, Role, SubscriberStatus},
    web::page::page,
};

const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../../templates/console/base.html"),
    ),
    (
        "error.html",
        include_str!("../../../templates/console/error.html"),
    ),
    (
        "login.html",
        include_str!("../../../templates/console/login.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../../templates/console/dashboard.html"),
    ),
    (
        "readers.html",
        include_str!("../../../templates/console/readers.html"),
    ),
    (
        "reader.html",
        include_str!("../../../templates/console/reader.html"),
    ),
    (
        "erase.html",
        include_str!("../../../templates/console/erase.html"),
    ),
    (
        "import.html",
        include_str!("../../../templates/console/import.html"),
    ),
    (
        "articles.html",
        include_str!("../../../templates/console/articles.html"),
    ),
    (
        "schedules.html",
        include_str!("../../../templates/console/schedules.html"),
    ),
    (
        "preview.html",
        include_str!("../../../templates/console/preview.html"),
    ),
    (
        "sends.html",
        include_str!("../../../templates/console/sends.html"),
    ),
    (
        "send_failures.html",
        include_str!("../../../templates/console/send_failures.html"),
    ),
    (
        "send.html",
        include_str!("../../../templates/console/send.html"),
    ),
    (
        "send_report.html",
        include_str!("../../../templates/console/send_report.html"),
    ),
    (
        "alerts.html",
        include_str!("../../../templates/console/alerts.html"),
    ),
    (
        "audit.html",
        include_str!("../../../templates/console/audit.html"),
    ),
    (
        "accounts.html",
        include_str!("../../../templates/console/accounts.html"),
    ),
    (
        "account.html",
        include_str!("../../../templates/console/account.html"),
    ),
    (
        "token.html",
        include_str!("../../../templates/console/token.html"),
    ),
    (
        "reputation.html",
        include_str!("../../../templates/console/reputation.html"),
    ),
];

const CSS: &str = include_str!("../../../static/console.css");
const JS: &str = include_str!("../../../static/console.js");

/// The static files' names carry a hash of their content, so they are cached for good and
/// a new version is fetched at once.
static ASSETS: LazyLock<(String, String)> = LazyLock::new(|| {
    let short = |s: &str| crate::auth::sha256_hex(s)[..10].to_owned();
    (
        format!("console-{}.css", short(CSS)),
        format!("console-{}.js", short(JS)),
    )
});

pub async fn asset(Path(file): Path<String>) -> Response {
    let (css, js) = &*ASSETS;
    let (body, kind) = if file == *css {
        (CSS, "text/css; charset=utf-8")
    } else if file == *js {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

static TERA: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    if let Err(e) = t.add_raw_templates(TEMPLATES.iter().copied()) {
        panic!("console templates: {e:?}");
    }
    t.set_escape_fn(|s| tera::escape_html(s).replace("&#x2F;", "/"));
    t.autoescape_on(vec![".html"]);
    t.register_filter("num", num_filter);
    t.register_filter("count", count_filter);
    t.register_filter("when", when_filter);
    t.register_filter("day", day_filter);
    t.register_filter("label", label_filter);
    t.register_filter("digits", digits_filter);
    t
});

/// Checks the templates parse (at start, not at the first page).
pub fn check_templates() {
    LazyLock::force(&TERA);
}

/// Western digits as they are, or Arabic-Indic ones (with the Arabic separators).
pub fn digits(s: &str, d: Digits) -> String {
    let s = crate::render::calendar::digits(s, d);
    match d {
        Digits::Latin => s,
        Digits::Arabic => s.replace(',', "٬").replace('.', "٫"),
    }
}

/// `1234567` → `1,234,567` (in the newsroom's digits).
pub fn number(n: i64, d: Digits) -> String {
    let raw = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i > 0 && (raw.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    digits(&out, d)
}

fn digits_arg(args: &HashMap<String, Value>) -> Digits {
    match args.get("d").and_then(Value::as_str) {
        Some("arabic") => Digits::Arabic,
        _ => Digits::Latin,
    }
}

fn num_filter(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let d = digits_arg(args);
    Ok(match v {
        Value::Number(n) if n.is_i64() => Value::String(number(n.as_i64().unwrap_or(0), d)),
        Value::Number(n) => Value::String(digits(&format!("{:.1}", n.as_f64().unwrap_or(0.0)), d)),
        other => other.clone(),
    })
}

/// `{{ n | count(noun="result", d=d) }}`: «لا نتائج», «نتيجة واحدة», «نتيجتان», «١٠ نتائج»,
/// through the Arabic plural rules (`render::plural`), the number in the newsroom's digits.
fn count_filter(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    use crate::render::{LINE, READER, RESULT};
    let noun = match args.get("noun").and_then(Value::as_str) {
        Some("result") => &RESULT,
        Some("reader") => &READER,
        Some("line") => &LINE,
        other => return Err(tera::Error::msg(format!("count: unknown noun {other:?}"))),
    };
    let n = v
        .as_u64()
        .ok_or_else(|| tera::Error::msg(format!("count: {v} is not a count")))?;
    let written = number(i64::try_from(n).unwrap_or(i64::MAX), digits_arg(args));
    Ok(Value::String(crate::render::count_ar_as(n, noun, &written)))
}

/// `{{ x | digits(d=d) }}`: text we composed (an audit entry's details) with its numbers in
/// the newsletter's numerals.
fn digits_filter(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::String(digits(
        v.as_str().unwrap_or_default(),
        digits_arg(args),
    )))
}

fn time_filter(
    v: &Value,
    args: &HashMap<String, Value>,
    f: fn(&chrono::DateTime<chrono_tz::Tz>) -> String,
) -> tera::Result<Value> {
    let Some(ms) = v.as_i64() else {
        return Ok(Value::String(String::new()));
    };
    let tz: chrono_tz::Tz = args
        .get("tz")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
        return Ok(Value::String(String::new()));
    };
    Ok(Value::String(digits(
        &f(&t.with_timezone(&tz)),
        digits_arg(args),
    )))
}

fn when_filter(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    time_filter(v, args, arabic_date_time)
}

fn day_filter(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    time_filter(v, args, arabic_date)
}

pub fn role_label(r: Role) -> &'static str {
    r.arabic()
}

pub fn send_status_label(s: DigestStatus) -> &'static str {
    match s {
        DigestStatus::Queued => "بانتظار موعده",
        DigestStatus::Sending => "جارٍ الإرسال",
        DigestStatus::Paused => "متوقّف مؤقتاً",
        DigestStatus::Done => "اكتمل",
        DigestStatus::Failed => "توقّف بسبب أعطال",
        DigestStatus::Cancelled => "أُلغي",
    }
}

fn reader_status_label(s: SubscriberStatus) -> &'static str {
    match s {
        SubscriberStatus::Pending => "بانتظار التأكيد",
        SubscriberStatus::Confirmed => "مؤكَّد",
        SubscriberStatus::Unsubscribed => "ألغى اشتراكه",
        SubscriberStatus::Bounced => "بريده يرتدّ",
    }
}

fn kind_label(k: DigestKind) -> &'static str {
    match k {
        DigestKind::Scheduled => "مجدول",
        DigestKind::Manual => "يدوي",
        DigestKind::Test => "تجريبي",
    }
}

fn event_label(e: ConsentEvent) -> &'static str {
    match e {
        ConsentEvent::Signup => "اشترك",
        ConsentEvent::Confirm => "أكّد اشتراكه",
        ConsentEvent::Unsubscribe => "ألغى اشتراكه",
        ConsentEvent::Bounce => "ارتدّ بريده",
        ConsentEvent::Import => "أُضيف باستيراد",
    }
}

/// What an audit entry is about (`send:12`, `reader:5`…), as an editor reads it.
fn target_label(s: &str, d: Digits) -> String {
    let Some((kind, id)) = s.split_once(':') else {
        return s.to_owned();
    };
    let what = match kind {
        "send" => "الإرسال",
        "reader" => "القارئ",
        "account" => "الحساب",
        "article" => "المقال",
        "token" => "المفتاح",
        "alert" => "التنبيه",
        "schedule" => return format!("الجدول {id}"),
        _ => return s.to_owned(),
    };
    match id.parse::<i64>() {
        Ok(n) => format!("{what} رقم {}", number(n, d)),
        Err(_) => s.to_owned(),
    }
}

/// How a consent event came about (`one-click`, `editor:…`, `hard:imap`…), in words.
fn how_label(s: &str, d: Digits) -> String {
    let source = |src: &str| -> String {
        match src {
            "imap" => "صندوق الارتدادات".into(),
            "file" => "ملف رسالة".into(),
            other => other.to_owned(),
        }
    };
    let (head, rest) = s.split_once(':').unwrap_or((s, ""));
    match (head, rest) {
        ("one-click", _) => "زر إلغاء الاشتراك في برنامج البريد".into(),
        ("link", _) => "صفحة إلغاء الاشتراك".into(),
        ("resubscribe", _) => "طلب العودة بعد الإلغاء".into(),
        ("cli", _) => "سطر الأوامر".into(),
        ("editor", who) => format!("محرّر ({who})"),
        ("digest", id) => match id.parse::<i64>() {
            Ok(n) => format!("ارتداد رسائل الإرسال رقم {}", number(n, d)),
            Err(_) => s.to_owned(),
        },
        ("hard", src) => format!("ارتداد دائم ({})", source(src)),
        ("soft", src) => format!("ارتداد مؤقت ({})", source(src)),
        ("complaint", src) => format!("شكوى «بريد مزعج» ({})", source(src)),
        ("unsubscribe", src) => format!("رسالة طلب إلغاء ({})", source(src)),
        ("import", file) if !file.is_empty() => format!("استيراد ({file})"),
        _ => SOURCES
            .iter()
            .find(|(k, _)| s == *k || s.starts_with(&format!("{k}:")))
            .map_or_else(|| s.to_owned(), |(_, l)| (*l).to_owned()),
    }
}

/// Where a reader signed up: `page`, `embed:URL`, `api`, `import:FILE`…
pub const SOURCES: [(&str, &str); 4] = [
    ("page", "صفحة الاشتراك"),
    ("embed", "نموذج تحت مقال"),
    ("api", "الواجهة البرمجية"),
    ("import", "استيراد"),
];

pub const ACTIONS: &[(&str, &str)] = &[
    ("login", "دخول"),
    ("login_failed", "محاولة دخول فاشلة"),
    ("login_locked", "محاولة دخول إلى حساب مقفل"),
    ("account_locked", "قُفل الحساب بعد محاولات فاشلة"),
    ("logout", "خروج"),
    ("logout_all", "خروج من كل الأجهزة"),
    ("totp_on", "تفعيل التحقق بخطوتين"),
    ("totp_off", "إيقاف التحقق بخطوتين"),
    ("totp_change", "تغيير مفتاح التحقق بخطوتين"),
    ("totp_reset", "إعادة ضبط التحقق بخطوتين لحساب"),
    ("reauth_failed", "تأكيد هوية فاشل في «حسابي»"),
    ("reauth_locked", "تأكيد هوية في حساب مقفل"),
    ("password_set", "تغيير كلمة المرور"),
    ("send_start", "بدء إرسال"),
    ("send_test", "إرسال تجريبي"),
    ("send_pause", "إيقاف إرسال مؤقتاً"),
    ("send_resume", "استئناف إرسال"),
    ("send_guard_pause", "أوقف الإرسال نفسه"),
    ("send_cancel", "إلغاء إرسال"),
    ("send_retry", "إعادة محاولة الفاشلة"),
    ("send_plan", "جدولة إرسال لوقت لاحق"),
    ("send_plan_edit", "تعديل إرسال مجدول"),
    ("alert_send", "إرسال تنبيه عاجل"),
    ("alert_cancel", "إلغاء تنبيه عاجل"),
    ("reader_unsubscribe", "إلغاء اشتراك قارئ"),
    ("reader_erase", "محو بيانات قارئ"),
    ("import", "استيراد قرّاء"),
    ("export", "تصدير القرّاء"),
    ("readers_list", "قراءة قائمة القرّاء عبر الواجهة البرمجية"),
    ("article_push", "إضافة مقال عبر الواجهة البرمجية"),
    ("ingest", "جلب الخلاصات الآن"),
    ("article_exclude", "استبعاد مقال"),
    ("next_digest", "تحرير النشرة القادمة"),
    ("article_include", "إعادة مقال"),
    ("schedule_pause", "إيقاف جدول"),
    ("schedule_resume", "استئناف جدول"),
    ("token_create", "إنشاء مفتاح واجهة"),
    ("token_revoke", "إلغاء مفتاح واجهة"),
    ("account_add", "إضافة حساب"),
    ("account_role", "تغيير دور حساب"),
    ("account_remove", "حذف حساب"),
];

/// `{{ x | label(k="send") }}`: the Arabic name of a stored state or action.
fn label_filter(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let s = v.as_str().unwrap_or_default();
    let kind = args.get("k").and_then(Value::as_str).unwrap_or_default();
    let label: Option<&str> = match kind {
        "send" => s.parse().ok().map(send_status_label),
        "reader" => s.parse().ok().map(reader_status_label),
        "kind" => s.parse().ok().map(kind_label),
        "event" => s.parse().ok().map(event_label),
        "role" => s.parse().ok().map(role_label),
        "action" => ACTIONS.iter().find(|(k, _)| *k == s).map(|(_, l)| *l),
        "how" => return Ok(Value::String(how_label(s, digits_arg(args)))),
        "target" => return Ok(Value::String(target_label(s, digits_arg(args)))),
        "actor" => match s {
            "cli" => Some("سطر الأوامر"),
            "guard" => Some("حارس الإرسال"),
            _ => None,
        },
        "client" => (s == "cli" || s == "guard").then_some("—"),
        "source" => SOURCES
            .iter()
            .find(|(k, _)| s == *k || s.starts_with(&format!("{k}:")))
            .map(|(_, l)| *l),
        _ => None,
    };
    Ok(Value::String(label.unwrap_or(s).to_owned()))
}

/// What a finished action says at the top of the next page (`?done=KEY`): fixed texts,
/// nothing from the request is shown.
fn flash(key: &str) -> Option<&'static str> {
    Some(match key {
        "paused" => "أُوقف الإرسال مؤقتاً.",
        "resumed" => "استُؤنف الإرسال.",
        "cancelled" => "أُلغي الإرسال: لن تصل الرسائل المتبقية إلى أحد.",
        "retried" => "أُعيدت الرسائل الفاشلة إلى قائمة الإرسال.",
        "nothing_to_retry" => "لا توجد رسائل فاشلة لإعادة المحاولة.",
        "tested" => "أُرسلت النسخة التجريبية.",
        "planned" => "جُدول الإرسال: يبدأ في موعده، ويمكنك تعديله أو إلغاؤه حتى ذلك الحين.",
        "plan_changed" => "عُدّل الإرسال المجدول.",
        "nothing_new" => "لا جديد لهذا الجدول: لم يُرسل شيء.",
        "alert_sent" => "سيُرسل التنبيه حين تنتهي مهلة التراجع.",
        "alert_cancelled" => "أُلغي التنبيه: لن يصل إلى أحد.",
        "unsubscribed" => "أُلغي اشتراك القارئ.",
        "erased" => "مُحيت بيانات القارئ.",
        "excluded" => "استُبعد المقال من النشرة القادمة.",
        "included" => "أُعيد المقال إلى النشرة القادمة.",
        "desk_saved" => "حُفظ ما اخترته للنشرة القادمة، والمعاينة تعرضه الآن.",
        "desk_cleared" => "عادت النشرة القادمة إلى إعدادات جدولها.",
        "moved" => "تغيّر ترتيب المقالات في النشرة القادمة.",
        "schedule_paused" => "أُوقف الجدول: ستمرّ مواعيده من دون نشرة حتى تستأنفه.",
        "schedule_resumed" => "استُؤنف الجدول.",
        "account_added" => "أُضيف الحساب.",
        "account_changed" => "غُيّر الحساب، وانتهت جلساته.",
        "totp_reset" => {
            "أُعيد ضبط التحقق بخطوتين للحساب وانتهت جلساته: يدخل صاحبه بكلمة المرور، ثم يفعّله من «حسابي»."
        }
        "account_removed" => "حُذف الحساب.",
        "token_revoked" => "أُلغي المفتاح.",
        "password_set" => "غُيّرت كلمة المرور. سجّل الدخول من جديد.",
        "totp_on" => "فُعّل التحقق بخطوتين.",
        "totp_off" => "أُوقف التحقق بخطوتين.",
        "logged_out_all" => "خرجت من كل الأجهزة.",
        _ => return None,
    })
}

/// The context every console page starts from: who is signed in, the navigation, the
/// newsroom's digits and time zone, the static files, and a message after an action.
pub fn context(app: &App, me: &Actor, title: &str, nav: &str, done: Option<&str>) -> Context {
    let mut c = base_context(app, title);
    c.insert("nav", nav);
    c.insert("me_email", &me.name);
    c.insert("me_role", role_label(me.role));
    c.insert("is_editor", &me.role.allows(Role::Editor));
    c.insert("is_owner", &me.role.allows(Role::Owner));
    c.insert("signed_in", &true);
    if let Some(f) = done.and_then(flash) {
        c.insert("flash", f);
    }
    if let Some(w) = app.mailer.transport.relays().and_then(|r| r.warning()) {
        c.insert("relay_warning", &w);
    }
    c
}

/// The context of pages without a session (sign-in, errors).
pub fn base_context(app: &App, title: &str) -> Context {
    let (css, js) = &*ASSETS;
    let mut c = Context::new();
    c.insert("title", title);
    c.insert("newsletter", &app.settings.newsletter.name);
    c.insert("css", &format!("/admin/static/{css}"));
    c.insert("js", &format!("/admin/static/{js}"));
    c.insert(
        "d",
        match app.settings.newsletter.digits {
            Digits::Latin => "latin",
            Digits::Arabic => "arabic",
        },
    );
    c.insert("tz", app.settings.newsroom_tz().name());
    c.insert("signed_in", &false);
    // Schedules by the names readers see («يومية», not `daily`): `labels[s.schedule]`.
    // An alert's send has no schedule: it is named as one, never `!alert`.
    let labels: std::collections::BTreeMap<&str, &str> = app
        .settings
        .schedules
        .iter()
        .map(|s| (s.name.as_str(), s.label.as_str()))
        .chain([(ALERT_SCHEDULE, "تنبيه عاجل")])
        .collect();
    c.insert("labels", &labels);
    c.insert("alert_schedule", ALERT_SCHEDULE);
    c
}

pub fn render(template: &str, ctx: &Context) -> Response {
    match TERA.render(template, ctx) {
        Ok(html) => page(StatusCode::OK, html),
        Err(e) => {
            tracing::error!(template, error = ?e, "console template failed");
            render_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "عطل لدينا",
                "تعذّر عرض هذه الصفحة.",
            )
        }
    }
}

/// An error page (no session needed, so it works for every error).
pub fn render_error(status: StatusCode, title: &str, message: &str) -> Response {
    let (css, _) = &*ASSETS;
    let mut c = Context::new();
    c.insert("title", title);
    c.insert("message", message);
    c.insert("css", &format!("/admin/static/{css}"));
    let html = TERA.render("error.html", &c).unwrap_or_else(|_| {
        "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><body><p>خطأ</p></body></html>".into()
    });
    page(status, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_no_longer_configured_shows_its_name() {
        let labels: std::collections::BTreeMap<&str, &str> =
            [("daily", "يومية")].into_iter().collect();
        let mut c = Context::new();
        c.insert("labels", &labels);
        for (x, shown) in [("daily", "يومية"), ("gone", "gone")] {
            c.insert("x", x);
            let out = tera::Tera::one_off("{{ labels[x] | default(value=x) }}", &c, true);
            assert_eq!(out.unwrap(), shown);
        }
    }

    #[test]
    fn numbers_as_the_newsroom_writes_them() {
        assert_eq!(number(0, Digits::Latin), "0");
        assert_eq!(number(999, Digits::Latin), "999");
        assert_eq!(number(1000, Digits::Latin), "1,000");
        assert_eq!(number(1234567, Digits::Latin), "1,234,567");
        assert_eq!(number(-4500, Digits::Latin), "-4,500");
        assert_eq!(number(1234567, Digits::Arabic), "١٬٢٣٤٬٥٦٧");
    }

    #[test]
    fn the_templates_parse() {
        check_templates();
    }
}
