//! The HTTP calls tests make on a `TestApp`: public forms and JSON, the admin API with the
//! test token (its answers typed, see `answers`), and following a send until it is over.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    answers::{Failure, Readers, SendReport},
    app::{ADMIN, TestApp},
};

impl TestApp {
    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// An admin POST's JSON answer, whatever its status.
    pub async fn admin_json<T: DeserializeOwned>(&self, path: &str, body: Value) -> T {
        self.admin_post(path, body).await.json().await.unwrap()
    }

    /// The status an authorised admin request gets.
    pub async fn admin_status(&self, method: reqwest::Method, path: &str) -> reqwest::StatusCode {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// An admin GET's JSON answer, as the type the test reads (`Value` for the raw shape);
    /// the request must succeed.
    pub async fn admin_get<T: DeserializeOwned>(&self, path: &str) -> T {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// `GET /api/sends/{id}`: where a send stands now.
    pub async fn send(&self, id: i64) -> SendReport {
        self.admin_get(&format!("/api/sends/{id}")).await
    }

    /// `GET /api/sends/{id}/failures`: the readers a send could not reach.
    pub async fn failures(&self, id: i64) -> Vec<Failure> {
        #[derive(serde::Deserialize)]
        struct Answer {
            failures: Vec<Failure>,
        }
        self.admin_get::<Answer>(&format!("/api/sends/{id}/failures"))
            .await
            .failures
    }

    /// `GET /api/subscribers?{query}`: one page of readers (`query` may be empty).
    pub async fn readers(&self, query: &str) -> Readers {
        self.admin_get(&format!("/api/subscribers?{query}")).await
    }

    /// `POST /api/sends/{id}/{action}` (pause, resume, cancel, retry): its status only.
    pub async fn control_status(&self, id: i64, action: &str) -> reqwest::StatusCode {
        self.admin_post(&format!("/api/sends/{id}/{action}"), serde_json::json!({}))
            .await
            .status()
    }

    /// `POST /api/sends/{id}/{action}` (pause, resume, cancel, retry), which must succeed, and
    /// the send as it answers.
    pub async fn control(&self, id: i64, action: &str) -> SendReport {
        let r = self
            .admin_post(&format!("/api/sends/{id}/{action}"), serde_json::json!({}))
            .await;
        assert!(
            r.status().is_success(),
            "{action} send {id}: {}",
            r.status()
        );
        r.json().await.unwrap()
    }

    /// A public page's body.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Adds an article through the API.
    pub async fn add_article(&self, url: &str, title: &str, summary: &str) {
        let r = self
            .admin_post(
                "/api/articles",
                serde_json::json!({"url": url, "title": title, "summary": summary}),
            )
            .await;
        assert!(r.status().is_success(), "add article: {}", r.status());
    }

    /// The counters a send's progress is read from agree with its ledger, row by row.
    pub async fn assert_counters_match_the_ledger(&self, id: i64) {
        let p = self.app.store.progress(id).await.unwrap().unwrap();
        for (state, counted) in [
            ("sent", p.sent),
            ("failed", p.failed),
            ("skipped", p.skipped),
            ("cancelled", p.cancelled),
        ] {
            let rows = self
                .dir
                .scalar(&format!(
                    "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state = '{state}'"
                ))
                .await;
            assert_eq!(counted, rows, "send {id}: counter {state}");
        }
        let open = self
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state IN ('pending', 'sending')"
            ))
            .await;
        assert_eq!(p.pending, open, "send {id}: pending");
        let claimed = self
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state = 'sending'"
            ))
            .await;
        assert_eq!(p.in_flight, claimed, "send {id}: in flight");
    }

    /// Polls a send until it is no longer sending.
    pub async fn wait_send(&self, id: i64) -> SendReport {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.send(id).await;
            if v.status != "sending" && v.status != "queued" {
                // A finished send's rows are final: its counters must agree with them.
                if v.status == "done" {
                    self.assert_counters_match_the_ledger(id).await;
                }
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "send {id} never finished: {v:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Triggers a send and returns its id (panics on nothing new).
    pub async fn send_now(&self) -> i64 {
        let r = self.admin_post("/api/sends", serde_json::json!({})).await;
        assert_eq!(r.status(), 202);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}
