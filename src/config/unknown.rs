//! Keys Nashra does not know, named with the nearest one it does.
//!
//! Every settings struct denies unknown fields, so a misspelt key (`[delivry]`, `smtp.hots`)
//! stops the process instead of leaving a setting silently at its default: an operator
//! would otherwise believe it live. serde reports one unknown field at a time, with the
//! names its struct expects; to name them all at once, each is taken out of a copy of the
//! merged configuration and the copy read again. The known names come from the structs
//! themselves, so a key added to a struct is known without touching this file.

use figment::{
    Figment, Metadata, Source,
    error::Kind,
    providers::Serialized,
    value::{Dict, Value},
};

use super::settings::Settings;

/// Keys the contract plans but this version does not have (CONTRACT.md, "planned"). They
/// are refused like any unknown key, but said to be not built yet rather than misspelt. A
/// key a struct gains is known before it is looked up here, so an entry can outlive its
/// feature harmlessly. `[]` stands for any element of an array of tables.
pub(super) const PLANNED: &[&str] = &[];

/// At most this many unknown keys are gathered (each costs one more reading).
const MAX_REPORTED: usize = 20;

/// One step of a key's path: a table's key or an array's element.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// An unknown key and what the operator is told about it.
struct Unknown {
    path: Vec<Step>,
    /// The names known beside it.
    expected: &'static [&'static str],
}

/// Every unknown key in `fig`, described for the operator; empty when there is none (or
/// when another error comes first: it is reported as it is).
pub(super) fn describe(fig: &Figment) -> Vec<String> {
    let Ok(mut data) = fig.extract::<Dict>() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    while found.len() < MAX_REPORTED {
        let Some(u) = next_unknown(&data) else { break };
        remove(&mut data, &u.path);
        found.push(u);
    }
    found.iter().map(|u| message(fig, u)).collect()
}

/// The first unknown field serde meets in `data`, located in it.
fn next_unknown(data: &Dict) -> Option<Unknown> {
    let probe = Figment::from(Serialized::defaults(data));
    let err = probe.extract::<Settings>().err()?;
    err.into_iter().find_map(|e| match e.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path ends with the field itself (its key, as it was read).
            let table = match e.path.split_last() {
                Some((last, table)) if *last == field => table,
                _ => &e.path[..],
            };
            Some(Unknown {
                path: locate(data, table, &field)?,
                expected,
            })
        }
        _ => None,
    })
}

/// Where `field` is under the table at `path` (figment's: an array's element by its index).
fn locate(data: &Dict, path: &[String], field: &str) -> Option<Vec<Step>> {
    fn walk(v: &Value, path: &[String], field: &str) -> Option<Vec<Step>> {
        match v {
            Value::Array(_, items) => {
                let (head, tail) = path.split_first()?;
                let i: usize = head.parse().ok()?;
                let mut rest = walk(items.get(i)?, tail, field)?;
                rest.insert(0, Step::Index(i));
                Some(rest)
            }
            Value::Dict(_, d) => match path.split_first() {
                None => d
                    .contains_key(field)
                    .then(|| vec![Step::Key(field.to_owned())]),
                Some((head, tail)) => {
                    let mut rest = walk(d.get(head)?, tail, field)?;
                    rest.insert(0, Step::Key(head.clone()));
                    Some(rest)
                }
            },
            _ => None,
        }
    }
    walk(&Value::from(data.clone()), path, field)
}

fn remove(data: &mut Dict, path: &[Step]) {
    fn walk(v: &mut Value, path: &[Step]) {
        match (v, path) {
            (Value::Dict(_, d), [Step::Key(k)]) => {
                d.remove(k);
            }
            (Value::Dict(_, d), [Step::Key(k), rest @ ..]) => {
                if let Some(v) = d.get_mut(k) {
                    walk(v, rest);
                }
            }
            (Value::Array(_, items), [Step::Index(i), rest @ ..]) => {
                if let Some(v) = items.get_mut(*i) {
                    walk(v, rest);
                }
            }
            _ => {}
        }
    }
    let mut root = Value::from(std::mem::take(data));
    walk(&mut root, path);
    if let Value::Dict(_, d) = root {
        *data = d;
    }
}

/// `schedules[1].deliver` (or `schedules[].deliver` with `any_element`).
fn dotted(path: &[Step], any_element: bool) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(_) if any_element => s.push_str("[]"),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn message(fig: &Figment, u: &Unknown) -> String {
    let key = dotted(&u.path, false);
    let value = fig.find_value(&figment_path(&u.path)).ok();
    let what = match &value {
        Some(Value::Dict(..)) => "section",
        Some(Value::Array(_, items)) if items.iter().all(|i| matches!(i, Value::Dict(..))) => {
            "section"
        }
        _ => "key",
    };
    let place = origin(fig, &u.path, value.as_ref());
    if PLANNED.contains(&dotted(&u.path, true).as_str()) {
        return format!(
            "`{key}`{place} is planned but not supported by this version of Nashra yet: remove it (it would have no effect)"
        );
    }
    let Some(Step::Key(name)) = u.path.last() else {
        return format!("unknown {what} `{key}`{place}");
    };
    let parent = &u.path[..u.path.len() - 1];
    let with_parent = |n: &str| {
        let p = dotted(parent, false);
        if p.is_empty() {
            n.to_owned()
        } else {
            format!("{p}.{n}")
        }
    };
    match nearest(name, u.expected) {
        Some(near) => format!(
            "unknown {what} `{key}`{place}: did you mean `{}`?",
            with_parent(near)
        ),
        None => {
            let known: Vec<String> = u.expected.iter().map(|n| format!("`{n}`")).collect();
            let under = match dotted(parent, false) {
                p if p.is_empty() => "the top level".to_owned(),
                p => format!("`{p}`"),
            };
            format!(
                "unknown {what} `{key}`{place}; {under} has {}",
                known.join(", ")
            )
        }
    }
}

/// The known name a typo most likely meant: at most one edit per three letters (and at
/// least one), letter case aside. None when nothing is that close: a list then helps more.
fn nearest(name: &str, expected: &[&'static str]) -> Option<&'static str> {
    let name = name.to_lowercase();
    let allowed = (name.chars().count() / 3).clamp(1, 3);
    expected
        .iter()
        .map(|e| (strsim::damerau_levenshtein(&name, e), *e))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

/// The path as figment looks values up (`schedules.1.deliver`).
fn figment_path(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => k.clone(),
            Step::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// " in FILE" or " (from NASHRA__SMTP__HOTS)": where the operator wrote the key.
fn origin(fig: &Figment, path: &[Step], value: Option<&Value>) -> String {
    // figment finds no array element by path: the array then says where it came from.
    let md: Option<&Metadata> = match value {
        Some(v) => fig.get_metadata(v.tag()),
        None => (1..path.len())
            .rev()
            .find_map(|n| fig.find_metadata(&figment_path(&path[..n]))),
    };
    let Some(md) = md else {
        return String::new();
    };
    if let Some(Source::File(f)) = &md.source {
        return format!(" in {}", f.display());
    }
    if md.name.contains("environment") {
        // A section from the environment came from variables under it: name the first.
        let mut leaf: Vec<String> = path
            .iter()
            .map(|s| match s {
                Step::Key(k) => k.to_ascii_uppercase(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        let mut v = value;
        while let Some(Value::Dict(_, d)) = v {
            let Some((k, next)) = d.iter().next() else {
                break;
            };
            leaf.push(k.to_ascii_uppercase());
            v = Some(next);
        }
        return format!(" (from NASHRA__{})", leaf.join("__"));
    }
    String::new()
}
