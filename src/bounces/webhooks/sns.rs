//! Amazon SNS's signing certificates: where one may come from (an SNS host, https on port
//! 443, or a host the operator listed), fetched with no redirect followed and a bounded body,
//! read with `x509-cert`, and its key kept so each certificate is fetched once. The same
//! no-redirect client confirms subscriptions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rustls_pki_types::{CertificateDer, pem::PemObject};
use x509_cert::{Certificate, der::Decode};

use super::refuse::Refuse;

/// SNS signing certificates kept.
const SNS_CERTS: usize = 16;
/// Largest SNS signing certificate read (Amazon's are under 2 KiB), and how long its fetch
/// may take: SNS gives up on us after 15 s.
const SNS_CERT_MAX: usize = 64 * 1024;
const SNS_FETCH_TIME: Duration = Duration::from_secs(10);

/// The keys of the certificates fetched so far (by URL), and the client that fetches them.
pub struct Certificates {
    keys: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    /// For SNS certificates and subscription confirmations: follows no redirect, since a
    /// redirect would take the fetch away from the host that was checked.
    http: reqwest::Client,
}

impl Certificates {
    pub fn new() -> Certificates {
        // Building fails only when a TLS backend cannot start; this one is rustls with the
        // roots compiled in, and reads nothing from the system.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(SNS_FETCH_TIME)
            .build()
            .expect("an HTTP client with rustls and compiled-in roots");
        Certificates {
            keys: Mutex::default(),
            http,
        }
    }

    /// The RSA public key (PKCS#1) of the certificate at `url`, fetched once. The caller
    /// has checked `url` with `cert_url_allowed`.
    pub async fn key(&self, url: &str) -> Result<Arc<Vec<u8>>, Refuse> {
        if let Some(k) = self.keys.lock().expect("not poisoned").get(url) {
            return Ok(k.clone());
        }
        let fetch_failed = |e: reqwest::Error| {
            Refuse::Failed(anyhow::anyhow!("cannot fetch the SNS certificate: {e}"))
        };
        let mut answer = self.http.get(url).send().await.map_err(fetch_failed)?;
        if answer.status().is_redirection() {
            return Err(Refuse::Unauthorized("certificate URL redirects"));
        }
        if !answer.status().is_success() {
            return Err(Refuse::Failed(anyhow::anyhow!(
                "cannot fetch the SNS certificate: {}",
                answer.status()
            )));
        }
        if answer
            .content_length()
            .is_some_and(|n| n > SNS_CERT_MAX as u64)
        {
            return Err(Refuse::Unauthorized("certificate too large"));
        }
        // Read in chunks so a large body is cut at the limit, not held whole first.
        let mut pem = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(fetch_failed)? {
            if pem.len() + chunk.len() > SNS_CERT_MAX {
                return Err(Refuse::Unauthorized("certificate too large"));
            }
            pem.extend_from_slice(&chunk);
        }
        let der = CertificateDer::from_pem_slice(&pem)
            .map_err(|_| Refuse::Unauthorized("not a PEM certificate"))?;
        let key = Arc::new(
            public_key(&der).ok_or(Refuse::Unauthorized("no RSA key in the certificate"))?,
        );
        let mut keys = self.keys.lock().expect("not poisoned");
        if keys.len() >= SNS_CERTS {
            keys.clear();
        }
        keys.insert(url.to_owned(), key.clone());
        Ok(key)
    }

    /// Visits a subscription's `SubscribeURL` (checked with `cert_url_allowed_host`).
    pub async fn confirm(&self, subscribe_url: &str) -> Result<(), Refuse> {
        let answer = self.http.get(subscribe_url).send().await.map_err(|e| {
            Refuse::Failed(anyhow::anyhow!("cannot confirm the SNS subscription: {e}"))
        })?;
        if !answer.status().is_success() {
            return Err(Refuse::Failed(anyhow::anyhow!(
                "cannot confirm the SNS subscription: SNS answered {}",
                answer.status()
            )));
        }
        Ok(())
    }
}

/// The public key of an X.509 certificate: the SubjectPublicKeyInfo's key bits, for RSA the
/// PKCS#1 RSAPublicKey ring takes.
fn public_key(cert: &[u8]) -> Option<Vec<u8>> {
    let cert = Certificate::from_der(cert).ok()?;
    cert.tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
}

/// `https://sns.<region>.amazonaws.com[.cn]/….pem` on port 443, or a host the operator listed.
pub fn cert_url_allowed(url: &str, extra: &[String]) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    listed(&u, extra) || (https_443(&u) && sns_host(host(&u)) && u.path().ends_with(".pem"))
}

/// A URL at SNS (any path), or at a host the operator listed.
pub fn cert_url_allowed_host(url: &str, extra: &[String]) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    listed(&u, extra) || (https_443(&u) && sns_host(host(&u)))
}

/// https on its own port: another port on an SNS name is not SNS's service.
fn https_443(u: &url::Url) -> bool {
    u.scheme() == "https" && u.port_or_known_default() == Some(443)
}

fn host(u: &url::Url) -> &str {
    u.host_str().unwrap_or("")
}

/// A listed `host` allows https on port 443 there; a listed `host:port` allows that port
/// (how the tests serve a certificate on a port of their own).
fn listed(u: &url::Url, extra: &[String]) -> bool {
    let h = host(u);
    extra.iter().any(|e| match u.port() {
        Some(p) => *e == format!("{h}:{p}"),
        None => e == h && https_443(u),
    })
}

fn sns_host(host: &str) -> bool {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"));
    match rest.and_then(|r| r.strip_prefix("sns.")) {
        Some(region) => {
            region.len() >= 3
                && region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_serve_certificates() {
        let none: Vec<String> = Vec::new();
        assert!(cert_url_allowed(
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
            &none
        ));
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.net/x.pem",
            "https://evil.net/sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com/x.txt",
            "https://s3.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
            "https://sns.eu-west-1.amazonaws.com:80/x.pem",
        ] {
            assert!(!cert_url_allowed(bad, &none), "{bad}");
        }
        assert!(cert_url_allowed(
            "https://sns.eu-west-1.amazonaws.com:443/x.pem",
            &none
        ));
    }

    #[test]
    fn a_listed_host_is_allowed_on_its_listed_port_only() {
        let listed = vec!["127.0.0.1:4000".to_owned(), "certs.example.net".to_owned()];
        for good in [
            "http://127.0.0.1:4000/cert.pem",
            "https://certs.example.net/cert.pem",
            "https://certs.example.net:443/cert.pem",
        ] {
            assert!(cert_url_allowed(good, &listed), "{good}");
        }
        for bad in [
            "http://127.0.0.1:4001/cert.pem",
            "http://127.0.0.1/cert.pem",
            "http://certs.example.net/cert.pem",
            "https://certs.example.net:8443/cert.pem",
        ] {
            assert!(!cert_url_allowed(bad, &listed), "{bad}");
        }
    }
}
