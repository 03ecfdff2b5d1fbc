//! A schedule's subject line, as the newsroom writes it: a template with `{{ date }}`.

use anyhow::Context;
use tera::{Context as Vars, Tera};

#[derive(Debug, Clone)]
pub struct SubjectTemplate(String);

impl SubjectTemplate {
    /// Checked once: it must render, and to something.
    pub fn parse(template: &str) -> anyhow::Result<SubjectTemplate> {
        let t = SubjectTemplate(template.to_owned());
        let s = t.render("1 يناير/ كانون الثاني 2026")?;
        anyhow::ensure!(!s.is_empty(), "renders to an empty subject");
        Ok(t)
    }

    /// The subject for `date`, on one line: nothing a template or an article brings may add a
    /// header.
    pub fn render(&self, date: &str) -> anyhow::Result<String> {
        let mut vars = Vars::new();
        vars.insert("date", date);
        let s = Tera::one_off(&self.0, &vars, false).context("schedule subject template")?;
        Ok(s.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_one_line() {
        let t = SubjectTemplate::parse("نشرة {{ date }}\r\nBcc: x@y.z").unwrap();
        assert_eq!(t.render("اليوم").unwrap(), "نشرة اليوم Bcc: x@y.z");
        assert!(SubjectTemplate::parse("{{ nope(").is_err());
        assert!(SubjectTemplate::parse("   ").is_err());
    }
}
