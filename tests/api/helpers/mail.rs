//! The mail a test receives: waiting for it, reading its headers and links, and running the
//! repository's acceptance checker on it.

use std::time::Duration;

use super::{app::TestApp, smtp::Received};

impl TestApp {
    /// Every one of `readers` received exactly one message.
    pub fn assert_each_received_once(&self, readers: &[String]) {
        let per = self.smtp.per_recipient();
        for r in readers {
            assert_eq!(per.get(r), Some(&1), "{r}");
        }
    }

    pub async fn wait_for_mail_to(&self, email: &str, n: usize) -> Received {
        self.wait_for_mail_to_within(email, n, Duration::from_secs(10))
            .await
    }

    pub async fn wait_for_mail_to_within(
        &self,
        email: &str,
        n: usize,
        within: Duration,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msgs = self.smtp.messages_to(email);
            if msgs.len() >= n {
                return msgs[n - 1].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message {n} to {email}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A message's Message-ID without its angle brackets.
pub fn message_id(m: &Received) -> String {
    header(m, "Message-ID")
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

pub fn parse(m: &Received) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("a parsable message")
}

pub fn header(m: &Received, name: &str) -> String {
    let text = String::from_utf8_lossy(&m.data);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n ", " ");
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The confirmation link in a confirmation email's text part.
pub fn confirm_link(m: &Received) -> String {
    let msg = parse(m);
    let text = msg.body_text(0).unwrap().to_string();
    text.lines()
        .find(|l| l.contains("/confirm/"))
        .expect("a confirm link")
        .trim()
        .to_owned()
}

/// The one-click URL from List-Unsubscribe.
pub fn unsubscribe_link(m: &Received) -> String {
    let h = header(m, "List-Unsubscribe");
    h.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned()
}

/// The acceptance checker for messages, kept in the repository (`tools/check_eml.py`) so a
/// fresh clone checks what it claims: a test that cannot run it fails, it never skips.
pub fn checker() -> std::path::PathBuf {
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/check_eml.py");
    assert!(tool.exists(), "{} is missing", tool.display());
    tool
}

/// Runs the acceptance checker on a message; panics unless every check passes.
pub fn check_eml(m: &Received) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &m.data).unwrap();
    let out = std::process::Command::new("python3")
        .arg(checker())
        .arg(f.path())
        .output()
        .expect("python3 runs (scripts/test installs it)");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "check_eml failed:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// A bounce or complaint fixture (`tests/fixtures/bounces`: Yahoo's ARF complaint, Gmail's
/// DSN, …) about message `m`, sent to `reader`.
pub fn report_about(fixture: &str, m: &Received, reader: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(fixture);
    std::fs::read_to_string(path)
        .unwrap()
        .replace("{{RETURN_PATH}}", &m.from)
        .replace("{{RECIPIENT}}", reader)
        .replace("{{MESSAGE_ID}}", &format!("<{}>", message_id(m)))
        .into_bytes()
}
