//! `[webhooks]`: the credentials each provider's bounce and complaint webhook is checked
//! with; a provider with none set answers 404.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// Basic-auth user and password put in the webhook URL given to Postmark.
    pub postmark_user: String,
    pub postmark_password: SecretString,
    /// Mailgun's "HTTP webhook signing key".
    pub mailgun_signing_key: SecretString,
    /// SendGrid's "Verification Key" (base64 DER public key) of the signed event webhook.
    pub sendgrid_public_key: String,
    /// SNS topics whose messages are taken (ARNs); none = the SES webhook is off.
    pub ses_topic_arns: Vec<String>,
    /// Hosts a signing certificate may come from besides Amazon's: `host` is https on port
    /// 443 there, `host:port` that port only (how the tests serve one).
    pub sns_cert_hosts: Vec<String>,
}
