//! Provider webhooks with payloads shaped as the providers document them
//! (tests/fixtures/webhooks): each with a correct signature (the reader's status changes) and
//! a forged one (401, nothing changes).

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use nashra::{domain::SubscriberEmail, store::SubscriberStatus};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use serde_json::Value;

use crate::helpers::*;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:nashra-ses-feedback";
const MAILGUN_KEY: &str = "key-test-mailgun-signing";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(name),
    )
    .unwrap()
}

async fn post(t: &TestApp, path: &str, body: &str, headers: &[(&str, &str)]) -> u16 {
    let mut r = t
        .http
        .post(t.url(path))
        .header("content-type", "text/plain; charset=UTF-8")
        .body(body.to_owned());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Posts `sent` to the SendGrid webhook with a signature by the test key
/// (`sendgrid-key.pem`) of `signed` at the timestamp `ts`, as SendGrid signs: ECDSA P-256
/// over timestamp + body.
async fn sendgrid(t: &TestApp, ts: i64, signed: &str, sent: &str) -> u16 {
    let key = match PrivateKeyDer::from_pem_slice(fixture("sendgrid-key.pem").as_bytes()).unwrap() {
        PrivateKeyDer::Pkcs8(k) => k,
        _ => panic!("PKCS#8"),
    };
    let rng = SystemRandom::new();
    let kp = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        key.secret_pkcs8_der(),
        &rng,
    )
    .unwrap();
    let ts = ts.to_string();
    let payload = [ts.as_bytes(), signed.as_bytes()].concat();
    let sig = STANDARD.encode(kp.sign(&rng, &payload).unwrap().as_ref());
    post(
        t,
        "/webhooks/sendgrid",
        sent,
        &[
            ("x-twilio-email-event-webhook-timestamp", &ts),
            ("x-twilio-email-event-webhook-signature", &sig),
        ],
    )
    .await
}

both_engines!(
    provider_webhooks_take_signed_events_and_refuse_forged_ones,
    |engine| async move {
        // The SNS signing certificate, served where the configuration allows it.
        let cert = Arc::new(Mutex::new(fixture("sns-cert.pem")));
        let cert_addr = serve_feed(cert).await;
        let cert_url = format!("http://{cert_addr}/feed.xml");
        let t = spawn_app_with(
            engine,
            &format!(
                r#"
[delivery]
bounce_after = 1
[webhooks]
postmark_user = "pm"
postmark_password = "pm-secret"
mailgun_signing_key = "{MAILGUN_KEY}"
sendgrid_public_key = "{}"
ses_topic_arns = ["{TOPIC}"]
sns_cert_hosts = ["{cert_addr}"]
"#,
                fixture("sendgrid-public.txt").trim()
            ),
        )
        .await;
        let readers = [
            "pm@example.com",
            "mg@example.com",
            "sg@example.com",
            "ses@example.com",
        ];
        let (id, msgs) = t.send_digest_to(&readers).await;
        let fill = |name: &str, i: usize| {
            fixture(name)
                .replace("{{RECIPIENT}}", readers[i])
                .replace("{{RECIPIENT_DOMAIN}}", "example.com")
                .replace("{{MESSAGE_ID}}", &message_id(&msgs[i]))
                .replace("{{TIMESTAMP}}", "2026-11-30T10:30:05.000Z")
        };

        // Postmark: Basic auth from the URL.
        let body = fill("postmark-bounce.json", 0);
        let wrong = format!("Basic {}", STANDARD.encode("pm:guess"));
        assert_eq!(
            post(
                &t,
                "/webhooks/postmark",
                &body,
                &[("authorization", &wrong)]
            )
            .await,
            401
        );
        assert_eq!(post(&t, "/webhooks/postmark", &body, &[]).await, 401);
        assert_eq!(t.status_of(readers[0]).await, SubscriberStatus::Confirmed);
        let right = format!("Basic {}", STANDARD.encode("pm:pm-secret"));
        assert_eq!(
            post(
                &t,
                "/webhooks/postmark",
                &body,
                &[("authorization", &right)]
            )
            .await,
            200
        );
        assert_eq!(t.status_of(readers[0]).await, SubscriberStatus::Bounced);

        // Mailgun: HMAC over timestamp and token; a token used twice is refused.
        let now = chrono::Utc::now().timestamp().to_string();
        let sign = |ts: &str, token: &str| {
            let mut mac =
                <Hmac<sha2::Sha256> as Mac>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
            mac.update(ts.as_bytes());
            mac.update(token.as_bytes());
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let mailgun = |token: &str, sig: &str| {
            fill("mailgun-failed.json", 1)
                .replace("{{TOKEN}}", token)
                .replace("{{UNIX_TIMESTAMP}}", &now)
                .replace("{{SIGNATURE}}", sig)
        };
        let forged = mailgun("tok-1", &sign(&now, "tok-other"));
        assert_eq!(post(&t, "/webhooks/mailgun", &forged, &[]).await, 401);
        assert_eq!(t.status_of(readers[1]).await, SubscriberStatus::Confirmed);
        let good = mailgun("tok-1", &sign(&now, "tok-1"));
        assert_eq!(post(&t, "/webhooks/mailgun", &good, &[]).await, 200);
        assert_eq!(t.status_of(readers[1]).await, SubscriberStatus::Bounced);
        assert_eq!(
            post(&t, "/webhooks/mailgun", &good, &[]).await,
            401,
            "replay"
        );

        // SendGrid: ECDSA P-256 over timestamp + body, the timestamp within minutes of now.
        let body = fill("sendgrid-events.json", 2);
        let now = chrono::Utc::now().timestamp();
        let tampered = body.replacen("bounce", "bounc3", 1);
        assert_eq!(sendgrid(&t, now, &body, &tampered).await, 401);
        // Correctly signed, but an hour ago (a captured request sent again) or an hour ahead.
        assert_eq!(
            sendgrid(&t, now - 3600, &body, &body).await,
            401,
            "replayed"
        );
        assert_eq!(
            sendgrid(&t, now + 3600, &body, &body).await,
            401,
            "from the future"
        );
        assert_eq!(t.status_of(readers[2]).await, SubscriberStatus::Confirmed);
        assert_eq!(sendgrid(&t, now, &body, &body).await, 200);
        assert_ne!(t.status_of(readers[2]).await, SubscriberStatus::Confirmed);
        let sg = SubscriberEmail::parse(readers[2]).unwrap();
        assert!(
            t.app.store.is_suppressed(&sg.normalized()).await.unwrap(),
            "the spam report in the batch suppresses"
        );

        // Amazon SES through SNS: SHA256withRSA by a certificate from an allowed host.
        let template = fill("ses-bounce.json", 3).replace("{{CERT_URL}}", &cert_url);
        let v: Value = serde_json::from_str(&template).unwrap();
        let mut to_sign = String::new();
        for k in ["Message", "MessageId", "Timestamp", "TopicArn", "Type"] {
            to_sign.push_str(&format!("{k}\n{}\n", v[k].as_str().unwrap()));
        }
        let rng = SystemRandom::new();
        let rsa = match PrivateKeyDer::from_pem_slice(fixture("sns-key.pem").as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).unwrap(),
            _ => panic!("PKCS#8"),
        };
        let mut sig = vec![0; rsa.public().modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &rng, to_sign.as_bytes(), &mut sig)
            .unwrap();
        let good = template.replace("{{SIGNATURE}}", &STANDARD.encode(&sig));
        sig[10] ^= 1;
        let forged = template.replace("{{SIGNATURE}}", &STANDARD.encode(&sig));
        assert_eq!(post(&t, "/webhooks/ses", &forged, &[]).await, 401);
        let elsewhere = good.replace(&cert_url, "https://evil.example.net/cert.pem");
        assert_eq!(post(&t, "/webhooks/ses", &elsewhere, &[]).await, 401);
        assert_eq!(t.status_of(readers[3]).await, SubscriberStatus::Confirmed);
        assert_eq!(post(&t, "/webhooks/ses", &good, &[]).await, 200);
        assert_eq!(t.status_of(readers[3]).await, SubscriberStatus::Bounced);
        // SNS retries: the same notification again changes nothing.
        assert_eq!(post(&t, "/webhooks/ses", &good, &[]).await, 200);

        let v = t.send(id).await;
        assert_eq!(v.feedback.hard_bounces, 4, "{v:?}");
        assert_eq!(v.feedback.complaints, 1, "{v:?}");
    }
);

both_engines!(an_unconfigured_provider_is_not_there, |engine| async move {
    let t = spawn_app(engine).await;
    for p in ["ses", "postmark", "mailgun", "sendgrid", "other"] {
        assert_eq!(
            post(&t, &format!("/webhooks/{p}"), "{}", &[]).await,
            404,
            "{p}"
        );
    }
});

/// Signs an SNS message (SignatureVersion 2) with the test key behind `sns-cert.pem`.
fn sign_sns(mut v: Value) -> String {
    let keys: &[&str] = if v["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut to_sign = String::new();
    for k in keys {
        if let Some(val) = v[*k].as_str() {
            to_sign.push_str(&format!("{k}\n{val}\n"));
        }
    }
    let rsa = match PrivateKeyDer::from_pem_slice(fixture("sns-key.pem").as_bytes()).unwrap() {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).unwrap(),
        _ => panic!("PKCS#8"),
    };
    let mut sig = vec![0; rsa.public().modulus_len()];
    rsa.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        to_sign.as_bytes(),
        &mut sig,
    )
    .unwrap();
    v["Signature"] = Value::String(STANDARD.encode(&sig));
    v.to_string()
}

/// Serves the SNS test certificate at `/cert.pem`, counting each time it is fetched, and
/// `/moved.pem`, a redirect to it.
async fn cert_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use axum::{Router, http::StatusCode, routing::get};
    let fetched = Arc::new(AtomicUsize::new(0));
    let count = fetched.clone();
    let app = Router::new()
        .route(
            "/cert.pem",
            get(move || {
                count.fetch_add(1, Ordering::SeqCst);
                async { fixture("sns-cert.pem") }
            }),
        )
        .route(
            "/moved.pem",
            get(|| async { (StatusCode::FOUND, [("location", "/cert.pem")]) }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, fetched)
}

both_engines!(
    an_sns_certificate_is_fetched_only_from_port_443_without_redirects_and_for_an_acceptable_message,
    |engine| async move {
        let (addr, fetched) = cert_server().await;
        let t = spawn_app_with(engine, &format!(
            "[delivery]\nbounce_after = 1\n[webhooks]\nses_topic_arns = [\"{TOPIC}\"]\nsns_cert_hosts = [\"{addr}\"]\n"
        ))
        .await;
        let reader = "ses@example.com";
        let (_, msgs) = t.send_digest_to(&[reader]).await;
        let cert_url = format!("http://{addr}/cert.pem");
        let message = |name: &str, cert_url: &str| -> Value {
            let text = fixture(name)
                .replace("{{RECIPIENT}}", reader)
                .replace("{{RECIPIENT_DOMAIN}}", "example.com")
                .replace("{{MESSAGE_ID}}", &message_id(&msgs[0]))
                .replace("{{TIMESTAMP}}", "2026-11-30T10:30:05.000Z")
                .replace("{{CERT_URL}}", cert_url);
            serde_json::from_str(&text).unwrap()
        };
        let bounce = || message("ses-bounce.json", &cert_url);

        // Refused for their topic or shape, each with the certificate URL allowed.
        let mut other_topic = bounce();
        other_topic["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:someone-else".into();
        let mut unsigned = bounce();
        unsigned["Signature"] = "".into();
        let mut not_ses = bounce();
        not_ses["Message"] = "hello".into();
        let mut confirm_elsewhere = message("ses-subscription-confirmation.json", &cert_url);
        confirm_elsewhere["SubscribeURL"] =
            "https://evil.example.net/?Action=ConfirmSubscription".into();
        for (what, body, status) in [
            ("another topic", sign_sns(other_topic), 401),
            ("no signature", unsigned.to_string(), 401),
            ("a Message that is not SES JSON", sign_sns(not_ses), 400),
            (
                "a subscribe URL elsewhere",
                sign_sns(confirm_elsewhere),
                401,
            ),
        ] {
            assert_eq!(post(&t, "/webhooks/ses", &body, &[]).await, status, "{what}");
        }
        assert_eq!(
            fetched.load(Ordering::SeqCst),
            0,
            "nothing is fetched for a message refused anyway"
        );

        // An SNS name on another port is not SNS: refused without a fetch.
        let other_port = message(
            "ses-bounce.json",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem",
        );
        assert_eq!(
            post(&t, "/webhooks/ses", &sign_sns(other_port), &[]).await,
            401
        );
        // A certificate URL that redirects is refused, the redirect not followed.
        let moved = message("ses-bounce.json", &format!("http://{addr}/moved.pem"));
        assert_eq!(post(&t, "/webhooks/ses", &sign_sns(moved), &[]).await, 401);
        assert_eq!(fetched.load(Ordering::SeqCst), 0, "the redirect was followed");
        assert_eq!(t.status_of(reader).await, SubscriberStatus::Confirmed);

        // The same bounce, acceptable: fetched once, taken.
        assert_eq!(post(&t, "/webhooks/ses", &sign_sns(bounce()), &[]).await, 200);
        assert_eq!(fetched.load(Ordering::SeqCst), 1);
        assert_eq!(t.status_of(reader).await, SubscriberStatus::Bounced);
    }
);
