//! SMS templates: one TOML file per message in `sms-templates/`, one text per language.
//!
//! ```toml
//! # sms-templates/control_number.toml
//! vars = ["control_number", "amount", "chfid", "product"]
//! sw = "Namba ya malipo {control_number}: lipa TZS {amount} kwa CHFID {chfid} ({product})."
//! en = "Control number {control_number}: pay TZS {amount} for CHFID {chfid} ({product})."
//! ```
//!
//! Owns: loading, checking (every language present, no placeholder outside `vars`) and
//! rendering. Must never: send a text with an unfilled `{placeholder}`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Language;

const LANGUAGES: [Language; 2] = [Language::Sw, Language::En];

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(default)]
    vars: Vec<String>,
    sw: String,
    en: String,
}

#[derive(Debug, Clone)]
struct Template {
    sw: String,
    en: String,
}

/// Every template, by name (the file stem).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_name: BTreeMap<String, Template>,
}

impl Templates {
    /// Loads and checks every `*.toml` in `dir`.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let read_err = |source| TemplateError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut by_name = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                path: path.clone(),
                source,
            })?;
            by_name.insert(name.clone(), parse(&name, &text)?);
        }
        Ok(Templates { by_name })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Fills `{var}` placeholders. `{{` and `}}` stand for literal braces.
    pub fn render(
        &self,
        name: &str,
        language: Language,
        vars: &HashMap<&str, String>,
    ) -> Result<String, TemplateError> {
        let t = self
            .by_name
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        let text = match language {
            Language::Sw => &t.sw,
            Language::En => &t.en,
        };
        fill(text, |var| vars.get(var).cloned()).map_err(|var| TemplateError::MissingVar {
            template: name.to_string(),
            var,
        })
    }
}

fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
    let invalid = |message: String| TemplateError::Invalid {
        file: format!("{name}.toml"),
        message,
    };
    let file: TemplateFile = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    for lang in LANGUAGES {
        let body = match lang {
            Language::Sw => &file.sw,
            Language::En => &file.en,
        };
        if body.trim().is_empty() {
            return Err(invalid(format!("the {} text is empty", lang.code())));
        }
        fill(body, |var| {
            file.vars.iter().any(|v| v == var).then(String::new)
        })
        .map_err(|var| {
            invalid(format!(
                "{} text uses {{{var}}}, which is not in vars = {:?}",
                lang.code(),
                file.vars
            ))
        })?;
    }
    Ok(Template {
        sw: file.sw,
        en: file.en,
    })
}

/// Replaces each `{var}` with `value(var)`; `Err(var)` names the first one without a value.
fn fill(text: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(format!("{name}.toml")), body).unwrap();
    }

    #[test]
    fn renders_in_the_reader_s_language() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "cn", "vars = [\"cn\", \"amount\"]\nsw = \"Namba {cn} kiasi {amount}\"\nen = \"Number {cn} amount {amount} {{ok}}\"\n");
        let t = Templates::load(dir.path()).unwrap();
        let vars = HashMap::from([("cn", "9911".to_string()), ("amount", "30,000".to_string())]);
        assert_eq!(
            t.render("cn", Language::Sw, &vars).unwrap(),
            "Namba 9911 kiasi 30,000"
        );
        assert_eq!(
            t.render("cn", Language::En, &vars).unwrap(),
            "Number 9911 amount 30,000 {ok}"
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
    }

    #[test]
    fn refuses_templates_an_officer_got_wrong() {
        let cases = [
            ("vars = []\nsw = \"Habari\"\n", "en"),
            ("vars = [\"a\"]\nsw = \"{b}\"\nen = \"{a}\"\n", "{b}"),
            ("vars = []\nsw = \"x\"\nen = \"  \"\n", "empty"),
            ("vars = []\nsw = \"{open\"\nen = \"x\"\n", "open"),
            ("vars = []\nsw = \"x\"\nen = \"y\"\nfr = \"z\"\n", "fr"),
        ];
        for (body, needle) in cases {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), "bad", body);
            let err = Templates::load(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains("bad.toml") && err.contains(needle),
                "{body:?}: {err}"
            );
        }
    }

    #[test]
    fn the_shipped_templates_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates");
        let t = Templates::load(&dir).unwrap();
        assert!(t.names().count() > 0);
    }
}
