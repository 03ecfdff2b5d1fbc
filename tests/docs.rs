//! The README and `docs/` tell the truth about the product they describe.
//!
//! Every command a page names runs (`nashra <command> --help` answers) with the flags it
//! shows, every configuration key a page names is a key of `config/default.toml`, the
//! configuration page lists exactly that file's keys, a configuration a page offers to copy
//! loads, and every link between the pages lands. The README stays a front door.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use regex::Regex;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The code a page shows: the lines of fenced blocks and each `inline span`.
fn code_of(text: &str) -> Vec<String> {
    let spans = Regex::new(r"`([^`]+)`").unwrap();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_string());
        } else {
            out.extend(spans.captures_iter(line).map(|c| c[1].to_string()));
        }
    }
    out
}

fn nashra(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nashra"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// `nashra … --help`'s text, or None when that command does not exist.
fn help(command: &[String]) -> Option<String> {
    let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
    args.push("--help");
    let out = nashra(&args);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_readme_is_a_front_door_and_every_link_between_pages_lands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; the rest belongs in docs/"
    );

    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let heading = Regex::new(r"(?m)^#+ (.+)$").unwrap();
    let slug = |h: &str| -> String {
        h.to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    };
    let mut broken = Vec::new();
    for (path, text) in pages() {
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if target.starts_with("http") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}", path.display()));
                continue;
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&file).unwrap();
                if !heading.captures_iter(&text).any(|h| slug(&h[1]) == anchor) {
                    broken.push(format!("{}: {target} (no such heading)", path.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that land nowhere:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_command_and_flag_the_docs_name_exists() {
    // `nashra [--config FILE] serve …`, `nashra admin add …`, `cargo run … -- demo`.
    let invocation = Regex::new(
        r"(?:\bnashra|\bcargo run[^`#]*? --) +((?:\[--config FILE\]|--config +\S+) +)?([^#]*)",
    )
    .unwrap();
    let word = Regex::new(r"^[a-z][a-z-]*$").unwrap();
    let flag = Regex::new(r"--[a-z][a-z0-9-]*").unwrap();
    let bench_built = cfg!(feature = "bench");
    let mut checked = BTreeSet::new();
    let mut wrong = Vec::new();
    for (path, text) in pages() {
        for code in code_of(&text) {
            for c in invocation.captures_iter(&code) {
                let mut tokens = c[2].split_whitespace().map(|t| t.replace("\\|", "|"));
                let Some(first) = tokens.next() else { continue };
                if !word.is_match(&first) {
                    continue;
                }
                if first == "bench" && !bench_built {
                    continue; // checked by `cargo test --features bench --test docs` (.ci/run)
                }
                let mut command = vec![first.clone()];
                let Some(mut text_of_help) = help(&command) else {
                    wrong.push(format!(
                        "{}: `nashra {first}` does not exist",
                        path.display()
                    ));
                    continue;
                };
                let rest: Vec<String> = tokens.collect();
                // A second word is a subcommand when the command has one by that name
                // (`admin add`, `sends status|pause|…`).
                let mut args = rest.as_slice();
                if let Some(second) = rest.first() {
                    let alternatives: Vec<&str> = second.split('|').collect();
                    if alternatives.iter().all(|a| word.is_match(a)) {
                        let mut found = Vec::new();
                        for a in &alternatives {
                            let mut sub = command.clone();
                            sub.push(a.to_string());
                            if let Some(h) = help(&sub) {
                                found.push(h);
                            }
                        }
                        if found.len() == alternatives.len() {
                            command.push(alternatives[0].to_string());
                            text_of_help = found.concat();
                            args = &rest[1..];
                        } else if !found.is_empty() {
                            wrong.push(format!(
                                "{}: `nashra {first} {second}`: not every one is a command",
                                path.display()
                            ));
                        }
                    }
                }
                for a in args {
                    for f in flag.find_iter(a) {
                        let f = f.as_str();
                        if f == "--config" || f == "--help" || f == "--release" {
                            continue;
                        }
                        checked.insert(format!("{} {f}", command.join(" ")));
                        if !text_of_help.contains(f) {
                            wrong.push(format!(
                                "{}: `nashra {} {f}`: no such flag",
                                path.display(),
                                command.join(" ")
                            ));
                        }
                    }
                }
                checked.insert(command.join(" "));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The pattern above must keep finding what the pages say, or this test proves nothing.
    for must in [
        "demo",
        "serve --no-delivery",
        "admin add",
        "dkim keygen --selector",
        "worker",
    ] {
        assert!(
            checked.contains(must),
            "the docs no longer name `nashra {must}`? {checked:?}"
        );
    }
}

/// The keys of `config/default.toml` by section, its commented examples (`# [[dkim]]` and
/// the keys under it) included: the sections a newsroom adds itself.
fn default_keys() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("config/default.toml")).unwrap();
    let section = Regex::new(r"^#?\s*\[\[?([a-z_.]+)\]\]?").unwrap();
    let key = Regex::new(r"^#?\s*([a-z_]+)\s*=").unwrap();
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(s) = section.captures(line) {
            current = Some(s[1].to_string());
            keys.entry(s[1].to_string()).or_default();
        } else if let (Some(k), Some(s)) = (key.captures(line), &current) {
            keys.get_mut(s).unwrap().insert(k[1].to_string());
        }
    }
    keys
}

#[test]
fn the_configuration_page_lists_exactly_the_keys_of_default_toml() {
    let defaults = default_keys();
    let page = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let section = Regex::new(r"^## `\[\[?([a-z_.]+)\]\]?`").unwrap();
    let row = Regex::new(r"^\| `([a-z_]+)` \|").unwrap();
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in page.lines() {
        if let Some(s) = section.captures(line) {
            current = Some(s[1].to_string());
            documented.entry(s[1].to_string()).or_default();
        } else if let (Some(r), Some(s)) = (row.captures(line), &current) {
            documented.get_mut(s).unwrap().insert(r[1].to_string());
        }
    }
    assert_eq!(
        documented, defaults,
        "docs/configuration.md and config/default.toml must name the same sections and keys"
    );
}

#[test]
fn every_key_the_docs_name_is_a_key_of_default_toml() {
    let defaults = default_keys();
    // Longest first, so `delivery.warmup.start` is read as that section's key.
    let mut names: Vec<String> = defaults.keys().map(|k| regex::escape(k)).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let sections = names.join("|");
    let named = Regex::new(&format!(r"\b({sections})(?:\[\d*\])?\.([a-z_]+)\b")).unwrap();
    let mut wrong = Vec::new();
    let mut seen = 0;
    for (path, text) in pages() {
        for code in code_of(&text) {
            for c in named.captures_iter(&code) {
                let (start, end) = (c.get(0).unwrap().start(), c.get(0).unwrap().end());
                let before = code[..start].chars().next_back();
                let after = code[end..].chars().next();
                if matches!(before, Some('.' | '@' | '/' | '-'))
                    || matches!(after, Some('.' | '/' | '@'))
                    || ["rs", "pem", "toml", "md", "csv", "eml"].contains(&&c[2])
                {
                    continue; // a host name (`smtp.example.org`) or a file, not a key
                }
                seen += 1;
                // A section's own table (`delivery.warmup`) is named as its parent's key.
                let table = defaults.contains_key(&format!("{}.{}", &c[1], &c[2]));
                if !table && !defaults[&c[1]].contains(&c[2]) {
                    wrong.push(format!("{}: `{}.{}`", path.display(), &c[1], &c[2]));
                }
            }
        }
    }
    assert!(
        seen > 50,
        "the pattern finds only {seen} keys: the check proves nothing"
    );
    assert!(
        wrong.is_empty(),
        "keys the docs name that do not exist:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_configurations_the_docs_offer_to_copy_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut tried = 0;
    for (path, text) in pages() {
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start().starts_with("```")) {
                (None, true) if line.trim() == "```toml" => block = Some(String::new()),
                (Some(b), true) => {
                    if b.starts_with("# nashra.toml") {
                        tried += 1;
                        let file = dir.path().join("nashra.toml");
                        std::fs::write(&file, b.as_bytes()).unwrap();
                        let out = Command::new(env!("CARGO_BIN_EXE_nashra"))
                            .arg("--config")
                            .arg(&file)
                            .arg("doctor")
                            .env(
                                "NASHRA__SECURITY__SECRET",
                                "a-production-secret-0123456789abcdef",
                            )
                            .env("NASHRA__SECURITY__ADMIN_TOKEN", "")
                            .env("NASHRA__SMTP__PASSWORD", "from-the-environment") // as the pages say
                            .env("NASHRA__DATABASE__URL", "sqlite://unused.db")
                            .output()
                            .unwrap();
                        // `doctor` checks the settings only once they have loaded.
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        assert!(
                            String::from_utf8_lossy(&out.stdout).contains("PASS"),
                            "{}: the configuration it offers does not load:\n{stderr}\n{b}",
                            path.display()
                        );
                    }
                    block = None;
                }
                (Some(b), false) => {
                    b.push_str(line);
                    b.push('\n');
                }
                _ => {}
            }
        }
    }
    assert!(
        tried >= 2,
        "the README and deployment.md each offer a nashra.toml to copy"
    );
}
