//! The shape of `src/`, checked as text so that it holds without anyone remembering it:
//!
//! - the top-level modules depend on each other one way only: no module reaches, through a
//!   `use` or an inline `crate::`/`super::` path, a module that reaches back to it;
//! - no file is longer than 700 lines and no function longer than 120 lines, outside tests.
//!
//! The source is read as text (comments stripped), not compiled: a path in a doc comment is
//! no dependency, a path in code always is.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 700;
const MAX_FN_LINES: usize = 120;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/ussd/actions/mod.rs` → `["ussd", "actions"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src_dir()).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The code of a file without comments and string literals (whose text is not code).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map(|e| e + 2).unwrap_or(rest.len());
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map(|e| body + e + close.len())
                .unwrap_or(rest.len());
            out.push_str("\"\"");
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else if rest.starts_with('"') && !preceded_by_quote_char(text, i) {
            let mut j = 1;
            let rb = rest.as_bytes();
            while j < rb.len() && rb[j] != b'"' {
                j += if rb[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            out.push_str("\"\"");
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `'"'` is a char literal, not the start of a string.
fn preceded_by_quote_char(text: &str, i: usize) -> bool {
    i > 0 && text.as_bytes()[i - 1] == b'\'' && text.as_bytes().get(i + 1) == Some(&b'\'')
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every path inside a `{ ... }` group (at its own depth).
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    expect = true;
                }
            }
            '}' => {
                if depth <= 1 {
                    break;
                }
                depth -= 1;
            }
            ',' if depth == 1 => expect = true,
            c if c.is_whitespace() => {}
            _ if depth == 1 && expect => {
                let id = ident_at(&s[i..]);
                if !id.is_empty() {
                    heads.push(id.to_string());
                }
                expect = false;
            }
            _ => {}
        }
    }
    heads
}

/// The top-level modules a file names, through `crate::` and `super::` paths.
fn referenced_modules(file: &Path, code: &str) -> BTreeSet<String> {
    let here = module_path(file);
    let mut found = BTreeSet::new();
    let add_from = |after: &str, found: &mut BTreeSet<String>| {
        if after.starts_with('{') {
            found.extend(group_heads(after));
        } else {
            let id = ident_at(after);
            if !id.is_empty() {
                found.insert(id.to_string());
            }
        }
    };
    for (pos, _) in code.match_indices("crate::") {
        let before = code[..pos].chars().last().unwrap_or(' ');
        if before.is_ascii_alphanumeric() || before == '_' || before == '$' {
            continue;
        }
        add_from(&code[pos + "crate::".len()..], &mut found);
    }
    // `super::…` from a module at depth d climbs; only climbs to the crate root name another
    // top-level module.
    for (pos, _) in code.match_indices("super::") {
        let before = code[..pos].chars().last().unwrap_or(' ');
        if before.is_ascii_alphanumeric() || before == '_' || before == ':' {
            continue;
        }
        let mut rest = &code[pos..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        if ups >= here.len() {
            add_from(rest, &mut found);
        }
    }
    found
}

fn top_level_modules() -> BTreeSet<String> {
    let lib = fs::read_to_string(src_dir().join("lib.rs")).unwrap_or_default();
    code_only(&lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")
                .map(|m| m.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_level_modules();
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in files {
        let path = module_path(&file);
        let Some(top) = path.first() else { continue };
        if !modules.contains(top) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap_or_default();
        for dep in referenced_modules(&file, &code_only(&text)) {
            if modules.contains(&dep) && &dep != top {
                graph.entry(top.clone()).or_default().insert(dep);
            }
        }
    }
    graph
}

/// A path from `from` to `to` in the graph, if any (breadth first: the shortest).
fn path_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    let mut seen = BTreeSet::from([from.to_string()]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(&node).into_iter().flatten() {
            if !seen.insert(next.clone()) {
                continue;
            }
            prev.insert(next.clone(), node.clone());
            if next == to {
                let mut path = vec![to.to_string()];
                let mut at = to.to_string();
                while let Some(p) = prev.get(&at) {
                    path.push(p.clone());
                    at = p.clone();
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(next.clone());
        }
    }
    None
}

#[test]
fn top_level_modules_depend_one_way() {
    let graph = dependency_graph();
    assert!(
        graph.len() > 5,
        "expected the modules of lib.rs, found {graph:?}"
    );
    let mut cycles = Vec::new();
    for (module, deps) in &graph {
        for dep in deps {
            if let Some(back) = path_between(&graph, dep, module) {
                cycles.push(format!("{module} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that depend back on each other (a `use` or inline `crate::` path per arrow):\n{}",
        cycles.join("\n")
    );
}

/// The lines of a file that count: everything before its `#[cfg(test)]` module.
fn non_test_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .collect()
}

#[test]
fn files_and_functions_fit_in_one_sitting() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    assert!(!files.is_empty());
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let lines = non_test_lines(&text);
        let name = file.strip_prefix(src_dir()).unwrap_or(&file).display();
        if lines.len() > MAX_FILE_LINES {
            problems.push(format!(
                "{name}: {} lines (at most {MAX_FILE_LINES})",
                lines.len()
            ));
        }
        for (start, fn_name, len) in functions(&lines) {
            if len > MAX_FN_LINES {
                problems.push(format!(
                    "{name}:{}: fn {fn_name} is {len} lines (at most {MAX_FN_LINES})",
                    start + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every `fn` with a body: its first line, name and length. rustfmt puts a body's closing
/// brace alone on a line at the indentation of its `fn`.
fn functions(lines: &[&str]) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let Some(pos) = trimmed.find("fn ") else {
            continue;
        };
        let head = &trimmed[..pos];
        let is_fn = head.split_whitespace().all(|w| {
            matches!(w, "pub" | "async" | "const" | "unsafe" | "extern") || w.starts_with("pub(")
        });
        if !is_fn {
            continue;
        }
        let name = ident_at(&trimmed[pos + 3..]).to_string();
        // A signature ends at the first line ending in `{` (a body) or `;` (none).
        let Some(sig_end) = lines[i..].iter().position(|l| {
            let l = l.trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        if !lines[i + sig_end].trim_end().ends_with('{') {
            continue;
        }
        let closing = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i..].iter().position(|l| l.trim_end() == closing) {
            out.push((i, name, end + 1));
        }
    }
    out
}

#[test]
fn the_checks_see_what_they_check() {
    let code = code_only("use crate::{a::X, b};\n// crate::c\nlet s = \"crate::d\"; e::f(crate::g::h);");
    let found = referenced_modules(&src_dir().join("x.rs"), &code);
    assert_eq!(
        found,
        ["a", "b", "g"].iter().map(|s| s.to_string()).collect()
    );
    let nested = src_dir().join("m").join("n.rs");
    let found = referenced_modules(&nested, "use super::super::k::Y; use super::z;");
    assert_eq!(found, BTreeSet::from(["k".to_string()]));
    let lines = ["fn a() {", "    x;", "}", "pub async fn b(", ") -> u8;"];
    assert_eq!(functions(&lines), vec![(0, "a".to_string(), 3)]);
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(
        path_between(&graph, "b", "a"),
        Some(vec!["b".to_string(), "a".to_string()])
    );
}
