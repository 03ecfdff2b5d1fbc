//! Sends for later in the console (issue 18): «أرسل في…» on the preview plans one in the
//! newsroom's time, the sends list shows it with its time, a form moves it or changes its
//! subject and «ألغِ الإرسال» cancels it; refusals are Arabic pages; a viewer plans nothing;
//! every step is in the audit log.

use chrono::{Duration, Utc};
use nashra::store::{DigestStatus, Role};
use reqwest::StatusCode;

use crate::helpers::*;

/// `at` as a `datetime-local` input sends it, in the newsroom's zone (the test apps':
/// Baghdad, the default schedule's).
fn input(at: chrono::DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Baghdad)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

both_engines!(
    an_editor_plans_a_send_from_the_preview_moves_it_and_cancels_it_from_the_list,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        add_account(&t, "viewer@example.org", Role::Viewer).await;
        let s = sign_in(&t, "editor@example.org").await;

        let (status, preview) = s.get("/admin/preview").await;
        assert_eq!(status, StatusCode::OK);
        assert!(preview.contains("أرسل في…"), "{preview}");
        assert!(preview.contains(r#"action="/admin/planned""#));
        assert!(preview.contains(r#"type="datetime-local""#));
        assert!(preview.contains("بتوقيت كل قارئ"));

        // Not confirmed, in the past, a subject that is a program: refused in Arabic.
        let at = Utc::now() + Duration::hours(3);
        let form = |at: &str, subject: &str, confirm: &str| {
            vec![
                ("schedule", "daily".to_owned()),
                ("at", at.to_owned()),
                ("subject", subject.to_owned()),
                ("confirm", confirm.to_owned()),
            ]
        };
        let post = |pairs: Vec<(&'static str, String)>| {
            let s = &s;
            async move {
                let pairs: Vec<(&str, &str)> =
                    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = s.post("/admin/planned", &pairs).await;
                let status = r.status();
                (status, location(&r), r.text().await.unwrap())
            }
        };
        let (status, _, page) = post(form(&input(at), "", "")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("أكّد أولاً"), "{page}");
        let past = input(Utc::now() - Duration::hours(1));
        let (status, _, page) = post(form(&past, "", "yes")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("الموعد مضى"), "{page}");
        let (status, _, page) = post(form(&input(at), "{% if true %}x{% endif %}", "yes")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("العنوان غير مقبول"), "{page}");
        let viewer = sign_in(&t, "viewer@example.org").await;
        let pairs = [
            ("schedule", "daily"),
            ("at", &input(at)),
            ("confirm", "yes"),
        ];
        let r = viewer.post("/admin/planned", &pairs).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 0);

        // Planned: in the list, with its time, its subject and the forms.
        let (status, to, _) = post(form(&input(at), "عدد خاص", "yes")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(to, "/admin/sends?done=planned");
        let id = t.dir.scalar("SELECT MAX(id) FROM digests").await;
        let plan = t.app.store.plan(id).await.unwrap().unwrap();
        assert_eq!(plan.status, DigestStatus::Queued);
        assert_eq!(plan.starts_at / 60_000, at.timestamp_millis() / 60_000);
        let (_, list) = s.get(&to).await;
        assert!(list.contains("جُدول الإرسال"), "{list}");
        assert!(list.contains("مجدولة لوقت لاحق"));
        assert!(list.contains("عدد خاص"));
        assert!(list.contains("بانتظار موعده"));
        assert!(list.contains(&format!(r#"action="/admin/planned/{id}""#)));
        assert!(list.contains(&format!(r#"value="{}""#, input(at))));
        assert!(list.contains(&format!(r#"action="/admin/sends/{id}/cancel""#)));
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert!(
            page.contains("يبدأ") && page.contains("عدّله أو ألغه"),
            "{page}"
        );
        assert!(!page.contains("/archive/"), "no web copy while it waits");
        assert!(page.contains(&format!(
            r#"action="/admin/sends/{id}/pause" data-when="sending" hidden"#
        )));

        // Moved an hour later, back to the schedule's subject.
        let later = at + Duration::hours(1);
        let pairs = [("at", input(later)), ("subject", String::new())];
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            s.post_to(&format!("/admin/planned/{id}"), &pairs).await,
            "/admin/sends?done=plan_changed"
        );
        let plan = t.app.store.plan(id).await.unwrap().unwrap();
        assert_eq!(plan.starts_at / 60_000, later.timestamp_millis() / 60_000);
        assert_eq!(plan.planned_subject, None);
        assert!(
            plan.subject.starts_with("نشرة"),
            "the schedule's: {}",
            plan.subject
        );

        // A viewer sees it, and neither moves nor cancels it.
        let (_, list) = viewer.get("/admin/sends").await;
        assert!(list.contains("مجدولة لوقت لاحق"));
        assert!(!list.contains(&format!(r#"action="/admin/planned/{id}""#)));
        let r = viewer.post(&format!("/admin/planned/{id}"), &pairs).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);

        // Cancelled: nothing waits, nothing can be moved, pausing was never offered.
        s.post_to(&format!("/admin/sends/{id}/cancel"), &[]).await;
        assert_eq!(
            t.app.store.plan(id).await.unwrap().unwrap().status,
            DigestStatus::Cancelled
        );
        let (_, list) = s.get("/admin/sends").await;
        assert!(!list.contains("مجدولة لوقت لاحق"));
        let r = s.post(&format!("/admin/planned/{id}"), &pairs).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let log = audit_actions(&t).await;
        for action in ["send_plan", "send_plan_edit", "send_cancel"] {
            assert!(
                has_action(&log, "editor@example.org", action),
                "{action}: {log:?}"
            );
        }
    }
);
