//! The embeddable sign-up fragment's styles. A site pastes it into pages whose theme may carry
//! `!important` rules; only an inline `!important` beats those, so the template's inline
//! styles are made `!important` when it is loaded, and the file stays readable.

/// The fragment sites paste under their articles. Its inline styles are made `!important`
/// when loaded (the file stays readable): a site theme's `!important` rules beat plain inline
/// styles, and only an inline `!important` beats those.
pub(super) const EMBED: &str = include_str!("../../templates/embed.html");

/// Every declaration of every `style="…"` attribute in `html` marked `!important`.
pub(super) fn important_inline_styles(html: &str) -> String {
    let mut out = String::with_capacity(html.len() * 2);
    let mut rest = html;
    while let Some(at) = rest.find(" style=\"") {
        let (head, tail) = rest.split_at(at + " style=\"".len());
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        let decls: Vec<String> = tail[..end]
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                if d.ends_with("!important") {
                    d.to_owned()
                } else {
                    format!("{d} !important")
                }
            })
            .collect();
        out.push_str(&decls.join(";"));
        out.push(';');
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::important_inline_styles;

    #[test]
    fn every_inline_declaration_becomes_important() {
        assert_eq!(
            important_inline_styles(r#"<p style="color:red; margin:0 !important;">x</p><b>y</b>"#),
            r#"<p style="color:red !important;margin:0 !important;">x</p><b>y</b>"#
        );
    }
}
