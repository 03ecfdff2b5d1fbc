//! Subscribers as CSV: the import reader (header required, `email` and optional `name` and
//! `timezone` columns, any order) and the export writer.
//!
//! The `csv` crate does the format (quoted fields, commas and newlines inside quotes, a
//! byte-order mark); this module does what is ours. Export neutralises spreadsheet formulas
//! by putting `'` before a field that starts with `= + - @`, and import takes that `'` off
//! again, so an export read back in is the same list (`=1+1@example.com` stays itself).

use std::io::{Read, Write};

use anyhow::Context;

use crate::{
    domain::{EmailError, NameError, ReaderZone, SubscriberEmail, SubscriberName},
    store::SubscriberRow,
};

/// An address to import, the name that came with it and the reader's time zone (`None`:
/// the newsroom's).
pub type ImportRow = (SubscriberEmail, SubscriberName, Option<ReaderZone>);

/// A row read: the reader to import and what the row gave that they are imported without;
/// or why the row cannot be imported at all.
pub type ReadRow = Result<(ImportRow, LeftOut), RowError>;

/// What a row gave that failed its check: the reader is imported without it, and the report
/// says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub name: Option<NameLeftEmpty>,
    pub zone: Option<ZoneLeftOut>,
}

/// Longest piece of an offending value a report repeats.
const SHOWN_CHARS: usize = 60;

/// An offending value as a report shows it: cut short, control characters replaced (a
/// terminal or a page must not obey them).
fn shown(value: &str) -> String {
    let mut s: String = value
        .chars()
        .take(SHOWN_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if value.chars().count() > SHOWN_CHARS {
        s.push('…');
    }
    s
}

/// Why a row was not imported. The address is the only thing that turns a row away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("not imported: the email field is not UTF-8 text")]
    NotUtf8,
    #[error("not imported: no email address")]
    NoAddress,
    #[error("not imported: `{}` is not an email address ({why})", shown(.value))]
    Email { value: String, why: EmailError },
}

impl RowError {
    /// For the console's report, in Arabic, to the editor.
    pub fn arabic(&self) -> String {
        match self {
            RowError::NotUtf8 => "لم يُستورد: العنوان ليس نصاً بترميز UTF-8.".into(),
            RowError::NoAddress => "لم يُستورد: لا عنوان بريد في هذا السطر.".into(),
            RowError::Email { .. } => "لم يُستورد: هذا ليس عنوان بريد إلكتروني صالحاً.".into(),
        }
    }

    /// The offending value, as a report shows it.
    pub fn value(&self) -> String {
        match self {
            RowError::Email { value, .. } => shown(value),
            RowError::NotUtf8 | RowError::NoAddress => String::new(),
        }
    }
}

/// A name that failed the name check: the reader is imported with an empty name rather
/// than lost (a digit in «قارئ 1» is no reason to drop a reader), and the report says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameLeftEmpty {
    pub value: String,
    /// `None`: the field was not UTF-8 text.
    pub why: Option<NameError>,
}

impl std::fmt::Display for NameLeftEmpty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.why {
            Some(e) => e.to_string(),
            None => "not UTF-8 text".into(),
        };
        write!(
            f,
            "name «{}» left empty ({why}); the reader is imported without it",
            shown(&self.value)
        )
    }
}

impl NameLeftEmpty {
    /// For the console's report, in Arabic, to the editor.
    pub fn arabic(&self) -> String {
        let why = match self.why {
            Some(NameError::Invalid) => "فيه أرقام أو رموز، والاسم حروف ومسافات و. , - ' فقط",
            Some(NameError::TooLong) => "أطول من 60 حرفاً",
            None => "ليس نصاً بترميز UTF-8",
        };
        format!("أُضيف القارئ من دون اسم: الاسم {why}.")
    }

    /// The offending value, as a report shows it.
    pub fn value(&self) -> String {
        shown(&self.value)
    }
}

/// A time zone that is not one of the IANA database's: the reader is imported in the
/// newsroom's zone (as a sign-up with a forged zone is), and the report says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneLeftOut {
    pub value: String,
}

impl std::fmt::Display for ZoneLeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timezone «{}» is not an IANA time zone (such as Africa/Casablanca); the reader is imported in the newsroom's",
            shown(&self.value)
        )
    }
}

impl ZoneLeftOut {
    /// For the console's report, in Arabic, to the editor.
    pub fn arabic(&self) -> String {
        "أُضيف القارئ بتوقيت النشرة: المنطقة الزمنية ليست من أسماء IANA (مثل Africa/Casablanca)."
            .into()
    }

    /// The offending value, as a report shows it.
    pub fn value(&self) -> String {
        shown(&self.value)
    }
}

pub struct CsvImport<R> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    email: usize,
    name: Option<usize>,
    timezone: Option<usize>,
}

impl<R: Read> CsvImport<R> {
    pub fn new(input: R) -> anyhow::Result<CsvImport<R>> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let header = reader
            .byte_headers()
            .context("cannot read the CSV header")?;
        let cols: Vec<String> = header
            .iter()
            .map(|c| {
                String::from_utf8_lossy(c)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_lowercase()
            })
            .collect();
        let email = cols
            .iter()
            .position(|c| c == "email")
            .context("CSV header must have an `email` column")?;
        Ok(CsvImport {
            reader,
            record: csv::ByteRecord::new(),
            email,
            name: cols.iter().position(|c| c == "name"),
            timezone: cols.iter().position(|c| c == "timezone"),
        })
    }

    /// The next row with its line number, or `None` at the end. A row that cannot be read
    /// as CSV at all ends the import with an error naming its line.
    pub fn next_row(&mut self) -> anyhow::Result<Option<(u64, ReadRow)>> {
        loop {
            if !self
                .reader
                .read_byte_record(&mut self.record)
                .context("the CSV is malformed")?
            {
                return Ok(None);
            }
            let line = self.record.position().map_or(0, |p| p.line());
            if self.record.iter().all(|f| f.is_empty()) {
                continue;
            }
            return Ok(Some((line, self.parse())));
        }
    }

    fn parse(&self) -> ReadRow {
        let raw = |i: usize| self.record.get(i).unwrap_or_default();
        let address = std::str::from_utf8(raw(self.email)).map_err(|_| RowError::NotUtf8)?;
        let address = unescape(address);
        let email = SubscriberEmail::parse(address).map_err(|why| match why {
            EmailError::Empty => RowError::NoAddress,
            why => RowError::Email {
                value: address.to_owned(),
                why,
            },
        })?;
        let (name, name_left) = match self.name {
            Some(i) => self.name_at(i),
            None => (SubscriberName::default(), None),
        };
        let (zone, zone_left) = match self.timezone.map(raw).filter(|z| !z.is_empty()) {
            None => (None, None),
            Some(z) => match std::str::from_utf8(z).ok().and_then(ReaderZone::parse) {
                Some(zone) => (Some(zone), None),
                None => (
                    None,
                    Some(ZoneLeftOut {
                        value: String::from_utf8_lossy(z).into_owned(),
                    }),
                ),
            },
        };
        let left = LeftOut {
            name: name_left,
            zone: zone_left,
        };
        Ok(((email, name, zone), left))
    }

    /// The name in column `i`, or none and why.
    fn name_at(&self, i: usize) -> (SubscriberName, Option<NameLeftEmpty>) {
        let raw = self.record.get(i).unwrap_or_default();
        match std::str::from_utf8(raw) {
            Ok(text) => match SubscriberName::parse(unescape(text)) {
                Ok(name) => (name, None),
                Err(why) => (
                    SubscriberName::default(),
                    Some(NameLeftEmpty {
                        value: text.to_owned(),
                        why: Some(why),
                    }),
                ),
            },
            Err(_) => (
                SubscriberName::default(),
                Some(NameLeftEmpty {
                    value: String::from_utf8_lossy(raw).into_owned(),
                    why: None,
                }),
            ),
        }
    }
}

/// The header of an export. An export reads back as an import (`email`, `name`,
/// `timezone`); `timezone` is empty for the newsroom's zone, `alerts` is 1 for a reader who
/// asked for breaking news.
pub const EXPORT_HEADER: [&str; 8] = [
    "email",
    "name",
    "status",
    "source",
    "created_at",
    "confirmed_at",
    "timezone",
    "alerts",
];

pub fn export_writer<W: Write>(out: W) -> anyhow::Result<csv::Writer<W>> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(EXPORT_HEADER)?;
    Ok(w)
}

pub fn export_row<W: Write>(w: &mut csv::Writer<W>, s: &SubscriberRow) -> anyhow::Result<()> {
    w.write_record([
        escape(&s.email).as_ref(),
        escape(&s.name).as_ref(),
        s.status.as_str(),
        escape(&s.source).as_ref(),
        &s.created_at.to_string(),
        &s.confirmed_at.map(|t| t.to_string()).unwrap_or_default(),
        s.timezone.as_deref().unwrap_or_default(),
        if s.alerts != 0 { "1" } else { "0" },
    ])?;
    Ok(())
}

/// A field a spreadsheet would run as a formula gets a `'` in front (every CSV we write).
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The export's `'` taken off again.
fn unescape(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> (Vec<ImportRow>, Vec<(u64, String)>) {
        let mut r = CsvImport::new(text.as_bytes()).unwrap();
        let (mut good, mut notes) = (vec![], vec![]);
        while let Some((line, row)) = r.next_row().unwrap() {
            match row {
                Ok((x, left)) => {
                    good.push(x);
                    if let Some(name) = left.name {
                        notes.push((line, name.to_string()));
                    }
                    if let Some(zone) = left.zone {
                        notes.push((line, zone.to_string()));
                    }
                }
                Err(why) => notes.push((line, why.to_string())),
            }
        }
        (good, notes)
    }

    #[test]
    fn a_timezone_column_is_read_and_a_bad_zone_costs_only_the_zone() {
        let (rows, notes) = read_all(
            "email,TimeZone,name\na@example.com,Africa/Casablanca,Sara\nb@example.com,,\nc@example.com,Mars/Olympus,Omar\nd@example.com, Asia/Dubai ,\n",
        );
        let zones: Vec<Option<&str>> = rows.iter().map(|r| r.2.map(|z| z.name())).collect();
        assert_eq!(
            zones,
            [Some("Africa/Casablanca"), None, None, Some("Asia/Dubai")]
        );
        assert_eq!(rows[2].1.as_str(), "Omar", "the rest of the row is kept");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, 4);
        assert!(
            notes[0].1.starts_with("timezone «Mars/Olympus»"),
            "{notes:?}"
        );
    }

    #[test]
    fn quotes_newlines_bom_and_bad_rows() {
        let (rows, notes) = read_all(
            "\u{feff}name,email\n\"Smith, Sara\",a@example.com\nx,not-an-email\n\n\"Ali\nAhmad\",b@example.org\n,c@example.org\nSara 2,d@example.org\nقارئ 1,e@example.org\n",
        );
        assert_eq!(rows.len(), 5, "{notes:?}");
        assert_eq!(rows[0].1.as_str(), "Smith, Sara");
        assert_eq!(rows[1].1.as_str(), "Ali Ahmad");
        assert_eq!(rows[1].0.as_str(), "b@example.org");
        // Issue 15, item 8: a name that fails the check costs the name, never the reader.
        assert_eq!(
            (rows[3].0.as_str(), rows[3].1.as_str()),
            ("d@example.org", "")
        );
        assert_eq!(
            (rows[4].0.as_str(), rows[4].1.as_str()),
            ("e@example.org", "")
        );
        assert_eq!(notes.len(), 3);
        assert_eq!(
            notes[0],
            (
                3,
                "not imported: `not-an-email` is not an email address (not a plain address)".into()
            )
        );
        assert!(
            notes[1].1.starts_with("name «Sara 2» left empty"),
            "{notes:?}"
        );
        assert!(
            notes[2].1.starts_with("name «قارئ 1» left empty"),
            "{notes:?}"
        );
        assert_eq!(notes[2].0, 9);
    }

    #[test]
    fn an_export_reads_back_as_the_same_list() {
        let rows: Vec<SubscriberRow> = ["=1+1@example.com", "-x@example.com", "'q@example.com"]
            .iter()
            .enumerate()
            .map(|(i, e)| SubscriberRow {
                id: i as i64,
                email: e.to_string(),
                name: String::new(),
                status: crate::store::SubscriberStatus::Confirmed,
                source: "=HYPERLINK(\"x\")".into(),
                created_at: 1,
                consented_at: 1,
                confirmed_at: Some(1),
                unsubscribed_at: None,
                bounces: 0,
                timezone: (i == 1).then(|| "Asia/Dubai".into()),
                alerts: 1,
                alerts_per_day: None,
            })
            .collect();
        let mut w = export_writer(Vec::new()).unwrap();
        for r in &rows {
            export_row(&mut w, r).unwrap();
        }
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert!(
            out.contains("'=1+1@example.com"),
            "formula neutralised: {out}"
        );
        assert!(out.contains("'=HYPERLINK"), "{out}");
        let (back, bad) = read_all(&out);
        assert!(bad.is_empty(), "{bad:?}");
        let emails: Vec<&str> = back.iter().map(|(e, _, _)| e.as_str()).collect();
        assert_eq!(
            emails,
            ["=1+1@example.com", "-x@example.com", "'q@example.com"]
        );
        let zones: Vec<Option<&str>> = back.iter().map(|r| r.2.map(|z| z.name())).collect();
        assert_eq!(zones, [None, Some("Asia/Dubai"), None]);
    }
}
