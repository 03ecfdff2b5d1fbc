//! The slots a digest is rendered with: markers where a recipient's own data (the unsubscribe
//! and preferences links, the name in the greeting, the click key) and the digest's own archive
//! link go, filled in by delivery (see `delivery::message`). Marked with a random key made for
//! each digest, so no text an article brings can contain one.

/// The markers standing in for what delivery fills in. Letters and digits only, so HTML
/// escaping leaves them intact; built from a random key, so content cannot forge them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMarkers {
    /// Stored with the digest: delivery rebuilds the markers from it.
    pub key: String,
    /// A recipient's unsubscribe URL.
    pub unsubscribe: String,
    /// " reader's name" after the greeting (nothing when we have no name).
    pub name: String,
    /// The digest's own archive URL, known once it is stored.
    pub web: String,
    /// A reader's preferences page URL.
    pub preferences: String,
    /// A message's click key (`/r/<key>-<article>`, see `Tokens::click_key`).
    pub click: String,
}

impl SlotMarkers {
    pub fn random() -> SlotMarkers {
        SlotMarkers::from_key(&uuid::Uuid::new_v4().simple().to_string())
    }

    /// The markers of a stored digest; `""` is a digest from before random keys.
    pub fn from_key(key: &str) -> SlotMarkers {
        if key.is_empty() {
            return SlotMarkers {
                key: String::new(),
                unsubscribe: "NASHRAxSLOTxUNSUBSCRIBExURL".into(),
                name: "NASHRAxSLOTxNAME".into(),
                web: "NASHRAxSLOTxWEBxURL".into(),
                preferences: "NASHRAxSLOTxPREFERENCESxURL".into(),
                click: "NASHRAxSLOTxCLICK".into(),
            };
        }
        SlotMarkers {
            key: key.to_owned(),
            unsubscribe: format!("NASHRA{key}U"),
            name: format!("NASHRA{key}N"),
            web: format!("NASHRA{key}W"),
            preferences: format!("NASHRA{key}P"),
            click: format!("NASHRA{key}C"),
        }
    }

    /// The body with every slot filled the same way for everyone (an editor's preview).
    pub fn fill_generic(
        &self,
        body: &str,
        unsubscribe_url: &str,
        preferences_url: &str,
        web_url: &str,
    ) -> String {
        body.replace(&self.unsubscribe, unsubscribe_url)
            .replace(&self.name, "")
            .replace(&self.web, web_url)
            .replace(&self.preferences, preferences_url)
    }
}
