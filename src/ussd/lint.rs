//! `imis-gateway menus check`: what is wrong with a menus directory, precisely.
//!
//! Owns: the problems a CHF officer can make in `menus/*.toml` that loading tolerates or
//! that only show up on a phone: unreachable screens, missing translations, option keys that
//! clash with the navigation keys (or each other), undeclared variables, and screens whose
//! worst-case rendering (every variable at its declared maximum) is over the USSD limit of
//! its encoding, per language. Also every structural problem [`Menus::parse`] finds.
//! Must never: stop at the first problem (an officer fixes them all in one pass), or pass a
//! screen the engine would have to cut.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use super::gsm;
use super::menu::{Charset, Kind, MenuError, Menus, NavKeys, Screen, FACILITY_HOME, HOME};
use super::paginate::paginate;
use crate::domain::Language;

const LANGUAGES: [Language; 2] = [Language::Sw, Language::En];

/// Every problem in `dir`, one line each, sorted; empty means the menus pass.
pub fn check(dir: &Path, keys: &NavKeys, actions: &[&str]) -> Result<Vec<String>, MenuError> {
    let (menus, mut problems) = Menus::parse(dir, actions)?;
    problems.extend(unreachable(&menus));
    problems.extend(translations(&menus));
    problems.extend(keys_and_vars(&menus, keys));
    problems.extend(lengths(&menus, keys));
    problems.sort();
    problems.dedup();
    Ok(problems)
}

fn targets(s: &Screen) -> Vec<&str> {
    let d = &s.def;
    let mut t: Vec<&str> = d.options.iter().map(|o| o.next.as_str()).collect();
    t.extend(
        [&d.next, &d.on_exhausted, &d.empty]
            .into_iter()
            .flatten()
            .map(String::as_str),
    );
    t.extend(d.on.values().map(|v| v.screen()));
    t
}

fn unreachable(menus: &Menus) -> Vec<String> {
    let mut seen = BTreeSet::new();
    // A facility staff phone starts at its own first screen (`menu::FACILITY_HOME`).
    let mut queue = VecDeque::from([HOME, FACILITY_HOME]);
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(s) = menus.screens.get(id) {
            queue.extend(targets(s));
        }
    }
    let mut out: Vec<String> = menus
        .screens
        .values()
        .filter(|s| !seen.contains(s.id.as_str()))
        .map(|s| format!("{}: screen {} is unreachable from {HOME}", s.file, s.id))
        .collect();
    out.sort();
    out
}

fn translations(menus: &Menus) -> Vec<String> {
    let mut out = Vec::new();
    let missing = |t: Option<&str>| t.is_none_or(|s| s.trim().is_empty());
    for s in menus.screens.values() {
        for lang in LANGUAGES {
            let code = lang.code();
            if s.def.kind != Kind::Action && missing(s.def.text().raw(lang)) {
                out.push(format!("{}: screen {}: missing {code} text", s.file, s.id));
            }
            for o in &s.def.options {
                if missing(o.label().raw(lang)) {
                    out.push(format!(
                        "{}: screen {}: option {}: missing {code} label",
                        s.file, s.id, o.key
                    ));
                }
            }
        }
    }
    for (key, (file, t)) in &menus.texts {
        for lang in LANGUAGES {
            if missing(t.raw(lang)) {
                out.push(format!("{file}: text {key}: missing {} text", lang.code()));
            }
        }
    }
    out
}

fn keys_and_vars(menus: &Menus, keys: &NavKeys) -> Vec<String> {
    let mut out = Vec::new();
    let nav = [
        (&keys.back, "back"),
        (&keys.home, "home"),
        (&keys.more, "more"),
    ];
    for s in menus.screens.values() {
        let mut used = BTreeSet::new();
        for o in &s.def.options {
            if let Some((_, what)) = nav.iter().find(|(k, _)| **k == o.key) {
                out.push(format!(
                    "{}: screen {}: option key {:?} clashes with the {what} navigation key",
                    s.file, s.id, o.key
                ));
            }
            if !used.insert(o.key.as_str()) {
                out.push(format!(
                    "{}: screen {}: option key {:?} is used twice",
                    s.file, s.id, o.key
                ));
            }
        }
        let mut texts: Vec<String> = LANGUAGES
            .iter()
            .map(|l| s.def.text().get(*l).to_string())
            .collect();
        for o in &s.def.options {
            texts.extend(LANGUAGES.iter().map(|l| o.label().get(*l).to_string()));
        }
        for t in &texts {
            for name in super::menu::placeholders(t) {
                if !menus.vars.contains_key(name) {
                    out.push(format!(
                        "{}: screen {}: variable {{{name}}} is not declared in [vars]",
                        s.file, s.id
                    ));
                }
            }
        }
    }
    for (key, (file, t)) in &menus.texts {
        for lang in LANGUAGES {
            for name in super::menu::placeholders(t.get(lang)) {
                if !menus.vars.contains_key(name) {
                    out.push(format!(
                        "{file}: text {key}: variable {{{name}}} is not declared in [vars]"
                    ));
                }
            }
        }
    }
    out
}

/// Notices that can appear on top of each screen: its own invalid-input message, the
/// engine's "invalid choice", and any outcome notice that leads to it.
fn notices<'m>(menus: &'m Menus, screen: &'m Screen) -> Vec<&'m str> {
    let mut keys: Vec<&str> = Vec::new();
    match screen.def.kind {
        Kind::Menu | Kind::Choice => keys.push("invalid_choice"),
        Kind::Input => keys.extend(screen.def.invalid.as_deref()),
        _ => {}
    }
    if screen.id == HOME {
        keys.push("menu_changed");
    }
    for s in menus.screens.values() {
        for t in s.def.on.values() {
            if t.screen() == screen.id {
                keys.extend(t.notice());
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| menus.texts.get(k).map(|_| k))
        .collect()
}

fn lengths(menus: &Menus, keys: &NavKeys) -> Vec<String> {
    let mut out = Vec::new();
    // The worst value of a variable: `max_len` characters, on each of `max_items` lines.
    let filler = |name: &str| {
        menus.vars.get(name).map(|v| {
            let line = match v.charset {
                Charset::Gsm => "x".repeat(v.max_len),
                Charset::Ucs2 => "ж".repeat(v.max_len),
            };
            vec![line; v.max_items.unwrap_or(1).max(1)].join("\n")
        })
    };
    let label = |name: &str| {
        menus.vars.get(name).map(|v| match v.charset {
            Charset::Gsm => "x".repeat(v.max_len),
            Charset::Ucs2 => "ж".repeat(v.max_len),
        })
    };
    for s in menus.screens.values() {
        if s.def.kind == Kind::Action {
            continue;
        }
        let items: Vec<String> = match s.def.items.as_deref().and_then(|i| menus.vars.get(i)) {
            Some(v) => {
                let one = label(s.def.items.as_deref().unwrap_or_default()).unwrap_or_default();
                vec![one; v.max_items.unwrap_or(1)]
            }
            None => Vec::new(),
        };
        for lang in LANGUAGES {
            let footer = menus.footer(s, lang, keys);
            let mut candidates: Vec<Option<String>> = vec![None];
            candidates.extend(
                notices(menus, s)
                    .into_iter()
                    .map(|k| Some(super::menu::render(menus.text(k, lang), filler))),
            );
            for notice in candidates {
                let lines = menus.body_lines(s, lang, notice.as_deref(), &filler, &items);
                let whole = paginate(
                    &lines,
                    &super::Footer {
                        more: String::new(),
                        nav: footer.nav.clone(),
                    },
                );
                let (enc, len) = gsm::measure(&whole[0]);
                let paged = whole.len() > 1 || len > enc.limit();
                if paged && (!s.def.paginate || s.def.kind == Kind::End) {
                    let (enc, len) = gsm::measure(&lines_with_nav(&lines, &footer.nav));
                    out.push(format!(
                        "{}: screen {} ({}, {}): worst case {len} characters > {} (declare paginate = true or shorten it)",
                        s.file,
                        s.id,
                        lang.code(),
                        enc.name(),
                        enc.limit()
                    ));
                    break;
                }
                // Even a paginated screen must not need to cut a line in two.
                for line in &lines {
                    let page = paginate(std::slice::from_ref(line), &footer);
                    if page.len() > 1 {
                        let (enc, len) = gsm::measure(line);
                        out.push(format!(
                            "{}: screen {} ({}, {}): a line of {len} characters cannot fit one page with its navigation",
                            s.file,
                            s.id,
                            lang.code(),
                            enc.name()
                        ));
                    }
                }
            }
        }
    }
    out
}

fn lines_with_nav(lines: &[String], nav: &str) -> String {
    let mut s = lines.join("\n");
    if !nav.is_empty() {
        s.push('\n');
        s.push_str(nav);
    }
    s
}
