//! The shape of `src/`, checked: the code runs downhill, folders have faces, no circles.
//!
//! Read from the source text rather than from the compiler: `crate::x` paths (single and
//! grouped `use crate::{…}`) name a top-level module, `super::…` and `crate::a::b::…` name a
//! parent or a sibling. Comments and `#[cfg(test)] mod tests` blocks are left out: a test may
//! reach anywhere. Each failure names the file and what it reaches for.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use regex::Regex;

/// Top-level modules, lowest first. A module names only modules of a lower rank.
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("config", 1),
    ("store", 2),
    ("auth", 3),
    ("dkim", 3),
    ("dns", 3),
    ("metrics", 3),
    ("csv_io", 3),
    ("render", 3),
    ("shutdown", 0),
    ("feeds", 4),
    ("delivery", 4),
    ("app", 5),
    ("bounces", 6),
    ("schedule", 6),
    ("web", 7),
    ("startup", 8),
    ("bench", 8),
    ("cli", 9),
];

const MAX_LINES: usize = 600;

struct SourceFile {
    path: PathBuf,
    /// The module path: `src/web/console/mod.rs` is `["web", "console"]`.
    module: Vec<String>,
    is_mod_rs: bool,
    /// The text without comments and unit-test blocks.
    code: String,
    lines: usize,
    raw: String,
}

fn sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let raw = std::fs::read_to_string(&path).unwrap();
                let rel = path.strip_prefix(&root).unwrap().with_extension("");
                let mut module: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let is_mod_rs = module.last().is_some_and(|m| m == "mod");
                if is_mod_rs || module == ["lib"] || module == ["main"] {
                    module.pop();
                }
                out.push(SourceFile {
                    lines: raw.lines().count(),
                    code: code_of(&raw),
                    path,
                    module,
                    is_mod_rs,
                    raw,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Drops the unit tests at the end of a file and every `//` line.
fn code_of(raw: &str) -> String {
    let body = match raw.find("#[cfg(test)]\nmod tests") {
        Some(i) => &raw[..i],
        None => raw,
    };
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names a path prefix leads to: `prefix::name` or each top-level name of
/// `prefix::{a, b::c, d::{e}}`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let re = Regex::new(&format!(r"(?:^|[^A-Za-z0-9_:]){prefix}")).unwrap();
    let mut names = BTreeSet::new();
    for m in re.find_iter(code) {
        let rest = &code[m.end()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item) = (0usize, String::new());
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.extend(first_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(ch);
                }
            }
            names.extend(first_ident(&item));
        } else {
            names.extend(first_ident(rest));
        }
    }
    names
}

fn first_ident(s: &str) -> Option<String> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_string())
}

/// Items a file defines at its top level (what a child could import back up).
fn top_level_items(code: &str) -> BTreeSet<String> {
    let re = Regex::new(
        r"(?m)^(?:pub(?:\([a-z: ]+\))? )?(?:async )?(?:unsafe )?(?:struct|enum|union|fn|trait|type|const|static|macro_rules!) +([A-Za-z0-9_]+)",
    )
    .unwrap();
    re.captures_iter(code).map(|c| c[1].to_string()).collect()
}

#[test]
fn every_module_names_only_modules_below_it() {
    let rank: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for f in sources() {
        let Some(me) = f.module.first() else { continue };
        let Some(&my_rank) = rank.get(me.as_str()) else {
            wrong.push(format!(
                "{}: module `{me}` has no layer in tests/layers.rs",
                f.path.display()
            ));
            continue;
        };
        for target in names_after(&f.code, "crate::") {
            if &target == me {
                continue;
            }
            match rank.get(target.as_str()) {
                Some(&r) if r < my_rank => {}
                Some(_) => wrong.push(format!(
                    "{}: `{me}` names `crate::{target}`, which is not below it",
                    f.path.display()
                )),
                // A crate-root item (none today) or a name the regex took from a string.
                None => {}
            }
        }
    }
    assert!(wrong.is_empty(), "upward imports:\n{}", wrong.join("\n"));
}

#[test]
fn no_child_imports_what_its_parent_module_defines() {
    let files = sources();
    let faces: BTreeMap<Vec<String>, BTreeSet<String>> = files
        .iter()
        .filter(|f| f.is_mod_rs)
        .map(|f| (f.module.clone(), top_level_items(&f.code)))
        .collect();
    let mut wrong = Vec::new();
    for f in &files {
        for depth in 1..f.module.len() {
            let ancestor = &f.module[..depth];
            let Some(defined) = faces.get(ancestor) else {
                continue;
            };
            let ups = f.module.len() - depth;
            let mut used = names_after(&f.code, &"super::".repeat(ups));
            used.extend(names_after(
                &f.code,
                &format!("crate::{}::", ancestor.join("::")),
            ));
            let hits: Vec<_> = used.intersection(defined).cloned().collect();
            if !hits.is_empty() {
                wrong.push(format!(
                    "{} imports from src/{}/mod.rs: {}",
                    f.path.display(),
                    ancestor.join("/"),
                    hits.join(", ")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a mod.rs is a face; move these to a leaf file:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn sibling_files_import_each_other_in_no_circle() {
    let files = sources();
    // Within each folder: which sibling modules each file names.
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    for f in &files {
        let Some((_, parent)) = f.module.split_last() else {
            continue;
        };
        let mut named = names_after(&f.code, "super::");
        if !parent.is_empty() {
            named.extend(names_after(
                &f.code,
                &format!("crate::{}::", parent.join("::")),
            ));
        } else {
            named.extend(names_after(&f.code, "crate::"));
        }
        for n in named {
            let mut sibling = parent.to_vec();
            sibling.push(n);
            if sibling != f.module && modules.contains(&sibling) {
                graph.entry(f.module.clone()).or_default().insert(sibling);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        found: &mut Vec<String>,
    ) {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let cycle: Vec<_> = stack[i..].iter().chain([n]).map(|m| m.join("::")).collect();
            found.push(cycle.join(" → "));
            return;
        }
        if !done.insert(n.clone()) {
            return;
        }
        stack.push(n.clone());
        for next in g.get(n).into_iter().flatten() {
            visit(next, g, stack, done, found);
        }
        stack.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done, &mut found);
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn no_source_file_is_over_six_hundred_lines_and_none_is_unsafe() {
    let unsafe_code = Regex::new(r"\bunsafe\s*(\{|fn\b|impl\b)").unwrap();
    let mut wrong = Vec::new();
    for f in sources() {
        if f.lines > MAX_LINES {
            wrong.push(format!(
                "{}: {} lines (at most {MAX_LINES})",
                f.path.display(),
                f.lines
            ));
        }
        if unsafe_code.is_match(&f.raw) {
            wrong.push(format!("{}: unsafe code", f.path.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
