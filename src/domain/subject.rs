//! A schedule's subject line, as the newsroom writes it: a template with `{{ date }}` (the
//! digest's date line) or `{{ date_short }}` («12 يونيو»: a subject with both calendars'
//! full dates runs past what an inbox shows).

use anyhow::Context;
use tera::{Context as Vars, Tera};

#[derive(Debug, Clone)]
pub struct SubjectTemplate(String);

impl SubjectTemplate {
    /// Checked once: it must render, and to something.
    pub fn parse(template: &str) -> anyhow::Result<SubjectTemplate> {
        let t = SubjectTemplate(template.to_owned());
        let s = t.render("1 يناير/ كانون الثاني 2026", "1 يناير")?;
        anyhow::ensure!(!s.is_empty(), "renders to an empty subject");
        Ok(t)
    }

    /// The longest subject an editor may write (characters).
    pub const MAX_EDITORS: usize = 200;

    /// An editor's subject (the desk's, a send for later's, a subject test's): one line of
    /// text with at most the schedule's two placeholders. Anything else of the template
    /// language is refused: an editor's text is not a program, as the configuration's is.
    pub fn editors(s: &str) -> Result<SubjectTemplate, &'static str> {
        if s.chars().count() > Self::MAX_EDITORS {
            return Err("at most 200 characters");
        }
        if s.chars().any(char::is_control) {
            return Err("one line, without control characters");
        }
        let mut rest = s.to_owned();
        for p in [
            "{{ date }}",
            "{{date}}",
            "{{ date_short }}",
            "{{date_short}}",
        ] {
            rest = rest.replace(p, "");
        }
        if ["{{", "}}", "{%", "%}", "{#", "#}"]
            .iter()
            .any(|m| rest.contains(m))
        {
            return Err("only {{ date }} and {{ date_short }} may be used");
        }
        SubjectTemplate::parse(s).map_err(|_| "it renders to nothing")
    }

    /// The subject for `date`, on one line: nothing a template or an article brings may add a
    /// header.
    pub fn render(&self, date: &str, date_short: &str) -> anyhow::Result<String> {
        let mut vars = Vars::new();
        vars.insert("date", date);
        vars.insert("date_short", date_short);
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
        assert_eq!(t.render("اليوم", "").unwrap(), "نشرة اليوم Bcc: x@y.z");
        let short = SubjectTemplate::parse("نشرة الحل نت — {{ date_short }}").unwrap();
        assert_eq!(
            short.render("12 يونيو/ حزيران 2020", "12 يونيو").unwrap(),
            "نشرة الحل نت — 12 يونيو"
        );
        assert!(SubjectTemplate::parse("{{ nope(").is_err());
        assert!(SubjectTemplate::parse("   ").is_err());
    }
}
