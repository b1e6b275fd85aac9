//! SMS templates: `sms-templates/<lang>/<name>.txt`, one file per message and language,
//! rendered with minijinja.
//!
//! ```text
//! sms-templates/sw/control_number.txt
//!   CHF: Namba ya malipo {{ control_number }}. Lipa TZS {{ amount }} kwa CHFID {{ chfid }}.
//! sms-templates/samples.toml
//!   [control_number]
//!   control_number = "991110000025"
//!   ...
//! ```
//!
//! Owns: loading (every template in Kiswahili and English, syntax checked at load), rendering
//! (strict: a variable the text uses must be given), and [`check`], which renders each
//! template with the sample values of `samples.toml` and reports its alphabet and segment
//! count. Legacy `<name>.toml` files (`vars`, `sw`, `en`, `{var}` placeholders) still load,
//! so templates written before this layout keep working until they are moved.
//! Must never: send a text with a gap where a value was missing, or let a template name
//! exist in one language only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;

use crate::domain::Language;

const LANGUAGES: [Language; 2] = [Language::Sw, Language::En];

/// The sample values file, beside the language directories.
pub const SAMPLES_FILE: &str = "samples.toml";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read SMS templates in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SMS template {file}: {message}")]
    Invalid { file: String, message: String },
    #[error("no SMS template named {0:?}")]
    Unknown(String),
    #[error("SMS template {template:?} needs a value for {{{var}}}")]
    MissingVar { template: String, var: String },
    #[error("SMS template {template:?} failed to render: {message}")]
    Render { template: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyFile {
    #[serde(default)]
    vars: Vec<String>,
    sw: String,
    en: String,
}

#[derive(Debug, Clone)]
enum Body {
    /// A minijinja template registered as `<lang>/<name>`; the variables it reads.
    Jinja { vars: BTreeSet<String> },
    /// A legacy `{var}` text.
    Legacy(String),
}

/// Every template, by name (the file stem), in both languages.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    by_name: BTreeMap<String, [Body; 2]>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Templates {
        Templates {
            env: environment(),
            by_name: BTreeMap::new(),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn slot(language: Language) -> usize {
    match language {
        Language::Sw => 0,
        Language::En => 1,
    }
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> TemplateError + '_ {
    move |source| TemplateError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(file: impl Into<String>, message: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        file: file.into(),
        message: message.into(),
    }
}

/// Files in `dir` with extension `ext`, as (stem, path), sorted.
fn files(dir: &Path, ext: &str) -> Result<Vec<(String, PathBuf)>, TemplateError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        if !path.is_file() || path.extension().and_then(|e| e.to_str()) != Some(ext) {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            out.push((stem.to_string(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}

impl Templates {
    /// Loads and checks every template under `dir`.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut env = environment();
        let mut found: BTreeMap<String, [Option<Body>; 2]> = BTreeMap::new();
        std::fs::read_dir(dir).map_err(read_err(dir))?;
        for lang in LANGUAGES {
            let sub = dir.join(lang.code());
            if !sub.is_dir() {
                continue;
            }
            for (name, path) in files(&sub, "txt")? {
                let file = format!("{}/{name}.txt", lang.code());
                let source = std::fs::read_to_string(&path).map_err(read_err(&path))?;
                if source.trim().is_empty() {
                    return Err(invalid(file, "the text is empty"));
                }
                let key = format!("{}/{name}", lang.code());
                env.add_template_owned(key.clone(), source)
                    .map_err(|e| invalid(&file, e.to_string()))?;
                let vars = env
                    .get_template(&key)
                    .map_err(|e| invalid(&file, e.to_string()))?
                    .undeclared_variables(false)
                    .into_iter()
                    .collect();
                found.entry(name).or_default()[slot(lang)] = Some(Body::Jinja { vars });
            }
        }
        for (name, path) in files(dir, "toml")? {
            if path.file_name().and_then(|f| f.to_str()) == Some(SAMPLES_FILE) {
                continue;
            }
            let file = format!("{name}.toml");
            if found.contains_key(&name) {
                return Err(invalid(
                    file,
                    "also defined as sw/en .txt files; keep one of the two",
                ));
            }
            let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
            let [sw, en] = parse_legacy(&name, &text)?;
            found.insert(name, [Some(Body::Legacy(sw)), Some(Body::Legacy(en))]);
        }
        let mut by_name = BTreeMap::new();
        for (name, [sw, en]) in found {
            match (sw, en) {
                (Some(sw), Some(en)) => {
                    by_name.insert(name, [sw, en]);
                }
                (None, _) => {
                    return Err(invalid(
                        format!("sw/{name}.txt"),
                        "missing: every template needs a Kiswahili and an English text",
                    ))
                }
                (_, None) => {
                    return Err(invalid(
                        format!("en/{name}.txt"),
                        "missing: every template needs a Kiswahili and an English text",
                    ))
                }
            }
        }
        Ok(Templates { env, by_name })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The variables template `name` reads (legacy templates: their declared `vars`).
    pub fn vars(&self, name: &str) -> Option<BTreeSet<String>> {
        let bodies = self.by_name.get(name)?;
        let mut all = BTreeSet::new();
        for b in bodies {
            match b {
                Body::Jinja { vars } => all.extend(vars.iter().cloned()),
                Body::Legacy(text) => {
                    let _ = fill(text, |v| {
                        all.insert(v.to_string());
                        Some(String::new())
                    });
                }
            }
        }
        Some(all)
    }

    /// Renders `name` in `language`. Every variable the text uses must be in `vars`.
    pub fn render(
        &self,
        name: &str,
        language: Language,
        vars: &HashMap<&str, String>,
    ) -> Result<String, TemplateError> {
        let bodies = self
            .by_name
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        let missing = |var: &str| TemplateError::MissingVar {
            template: name.to_string(),
            var: var.to_string(),
        };
        let text = match &bodies[slot(language)] {
            Body::Legacy(text) => {
                fill(text, |var| vars.get(var).cloned()).map_err(|v| missing(&v))?
            }
            Body::Jinja { vars: needed } => {
                if let Some(v) = needed.iter().find(|v| !vars.contains_key(v.as_str())) {
                    return Err(missing(v));
                }
                let render_err = |e: minijinja::Error| TemplateError::Render {
                    template: name.to_string(),
                    message: e.to_string(),
                };
                self.env
                    .get_template(&format!("{}/{name}", language.code()))
                    .map_err(render_err)?
                    .render(vars)
                    .map_err(render_err)?
            }
        };
        Ok(text.trim().to_string())
    }
}

fn parse_legacy(name: &str, text: &str) -> Result<[String; 2], TemplateError> {
    let file = format!("{name}.toml");
    let f: LegacyFile = toml::from_str(text).map_err(|e| invalid(&file, e.message()))?;
    for (lang, body) in [(Language::Sw, &f.sw), (Language::En, &f.en)] {
        if body.trim().is_empty() {
            return Err(invalid(&file, format!("the {} text is empty", lang.code())));
        }
        fill(body, |var| {
            f.vars.iter().any(|v| v == var).then(String::new)
        })
        .map_err(|var| {
            invalid(
                &file,
                format!(
                    "{} text uses {{{var}}}, which is not in vars = {:?}",
                    lang.code(),
                    f.vars
                ),
            )
        })?;
    }
    Ok([f.sw, f.en])
}

/// Legacy placeholders: replaces each `{var}` with `value(var)`; `Err(var)` names the first
/// one without a value. `{{` and `}}` stand for literal braces.
fn fill(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(after) = tail.strip_prefix('{') {
            let end = after.find('}').ok_or_else(|| after.to_string())?;
            let var = &after[..end];
            out.push_str(&value(var).ok_or_else(|| var.to_string())?);
            rest = &after[end + 1..];
        } else {
            // A lone '}' is literal text.
            out.push('}');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One template in one language, rendered with its samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub name: String,
    pub language: Language,
    /// The rendered text, or why it could not be rendered.
    pub text: Result<String, String>,
    /// GSM 03.38 (true) or UCS2.
    pub gsm7: bool,
    pub segments: usize,
    /// Written in the legacy `.toml` layout.
    pub legacy: bool,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.text.is_ok()
    }
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lang = self.language.code();
        match &self.text {
            Ok(text) => write!(
                f,
                "{}/{}: {}, {} segment{}, {} chars{}: {text}",
                lang,
                self.name,
                if self.gsm7 { "GSM-7" } else { "UCS2" },
                self.segments,
                if self.segments == 1 { "" } else { "s" },
                text.chars().count(),
                if self.legacy { " (legacy .toml)" } else { "" },
            ),
            Err(e) => write!(f, "{lang}/{}: PROBLEM: {e}", self.name),
        }
    }
}

/// Loads the templates in `dir` and renders each, in each language, with the sample values
/// of `dir/samples.toml`.
pub fn check(dir: &Path) -> Result<Vec<Checked>, TemplateError> {
    let templates = Templates::load(dir)?;
    let path = dir.join(SAMPLES_FILE);
    let samples: BTreeMap<String, BTreeMap<String, String>> = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
        toml::from_str(&text).map_err(|e| invalid(SAMPLES_FILE, e.message()))?
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    for (name, bodies) in &templates.by_name {
        let vars: HashMap<&str, String> = samples
            .get(name)
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect())
            .unwrap_or_default();
        for language in LANGUAGES {
            let text = templates
                .render(name, language, &vars)
                .map_err(|e| match e {
                    TemplateError::MissingVar { var, .. } => {
                        format!("no sample value for {var:?} in {SAMPLES_FILE} [{name}]")
                    }
                    other => other.to_string(),
                });
            let (segments, gsm7) = match &text {
                Ok(t) => super::segment::segment_count(t),
                Err(_) => (0, true),
            };
            out.push(Checked {
                name: name.clone(),
                language,
                text,
                gsm7,
                segments,
                legacy: matches!(bodies[slot(language)], Body::Legacy(_)),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates")
    }

    #[test]
    fn renders_in_the_reader_s_language_and_refuses_gaps() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sw/cn.txt",
            "Namba {{ cn }} kiasi {{ amount }}\n",
        );
        write(
            dir.path(),
            "en/cn.txt",
            "Number {{ cn }}{% if amount %} amount {{ amount }}{% endif %}\n",
        );
        let t = Templates::load(dir.path()).unwrap();
        let vars = HashMap::from([("cn", "9911".to_string()), ("amount", "30,000".to_string())]);
        assert_eq!(
            t.render("cn", Language::Sw, &vars).unwrap(),
            "Namba 9911 kiasi 30,000"
        );
        assert_eq!(
            t.render("cn", Language::En, &vars).unwrap(),
            "Number 9911 amount 30,000"
        );
        let partial = HashMap::from([("cn", "9911".to_string())]);
        assert!(matches!(
            t.render("cn", Language::Sw, &partial),
            Err(TemplateError::MissingVar { var, .. }) if var == "amount"
        ));
        assert!(matches!(
            t.render("nope", Language::Sw, &vars),
            Err(TemplateError::Unknown(_))
        ));
        assert_eq!(
            t.vars("cn").unwrap().into_iter().collect::<Vec<_>>(),
            ["amount", "cn"]
        );
    }

    #[test]
    fn refuses_templates_an_officer_got_wrong() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("sw/a.txt", "Habari")], "en/a.txt"),
            (&[("en/a.txt", "Hello")], "sw/a.txt"),
            (&[("sw/a.txt", "{{ x "), ("en/a.txt", "x")], "sw/a.txt"),
            (&[("sw/a.txt", "  \n"), ("en/a.txt", "x")], "empty"),
            (
                &[
                    ("sw/a.txt", "x"),
                    ("en/a.txt", "y"),
                    ("a.toml", "sw='x'\nen='y'\n"),
                ],
                "a.toml",
            ),
            (
                &[("b.toml", "vars = []\nsw = \"{b}\"\nen = \"x\"\n")],
                "{b}",
            ),
        ];
        for (files, needle) in cases {
            let dir = tempfile::tempdir().unwrap();
            for (rel, body) in files.iter() {
                write(dir.path(), rel, body);
            }
            let err = Templates::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(needle), "{files:?}: {err}");
        }
    }

    #[test]
    fn legacy_toml_templates_still_render_beside_the_new_layout() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sw/a.txt", "Habari {{ jina }}");
        write(dir.path(), "en/a.txt", "Hello {{ jina }}");
        write(
            dir.path(),
            "old.toml",
            "vars = [\"n\"]\nsw = \"Namba {n} {{sawa}}\"\nen = \"Number {n}\"\n",
        );
        write(dir.path(), "samples.toml", "[a]\njina = \"Juma\"\n");
        write(dir.path(), "officer/commands.toml", "not a template = 1\n");
        let t = Templates::load(dir.path()).unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), ["a", "old"]);
        let vars = HashMap::from([("n", "7".to_string())]);
        assert_eq!(
            t.render("old", Language::Sw, &vars).unwrap(),
            "Namba 7 {sawa}"
        );
        let report = check(dir.path()).unwrap();
        let lines: Vec<String> = report.iter().map(|c| c.to_string()).collect();
        assert!(
            lines[0].starts_with("sw/a: GSM-7, 1 segment, 11 chars"),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("sw/old: PROBLEM") && l.contains("\"n\"")),
            "no sample for n: {lines:?}"
        );
    }

    #[test]
    fn the_shipped_templates_render_with_their_samples() {
        let report = check(&shipped()).unwrap();
        let bad: Vec<String> = report
            .iter()
            .filter(|c| !c.ok())
            .map(|c| c.to_string())
            .collect();
        assert!(bad.is_empty(), "{bad:?}");
        for name in [
            "control_number",
            "coverage_summary",
            "enrolment_confirmation",
            "command_error",
            "help",
        ] {
            for lang in LANGUAGES {
                let c = report
                    .iter()
                    .find(|c| c.name == name && c.language == lang)
                    .unwrap_or_else(|| panic!("{name} in {lang:?}"));
                assert!(!c.legacy, "{name} is in the new layout");
                assert!(c.gsm7 && c.segments == 1, "{c}");
            }
        }
        // The USSD renewal action's call, as it makes it.
        let t = Templates::load(&shipped()).unwrap();
        let vars = HashMap::from([
            ("control_number", "991110000025".to_string()),
            ("amount", "30,000".to_string()),
            ("chfid", "100000025".to_string()),
            ("product", "CHF01".to_string()),
        ]);
        let text = t.render("control_number", Language::Sw, &vars).unwrap();
        assert!(
            text.starts_with("CHF: Namba ya malipo 991110000025."),
            "{text}"
        );
    }
}
