//! The officer command language as data: keywords, field names and reply texts, loaded from
//! `sms-templates/officer/commands.toml` (`[officer] grammar_file`).
//!
//! Owns: loading and checking the file (every command, field and text present in both
//! languages, no keyword given to two commands), looking words up, and rendering texts;
//! and the CHFID rule typed numbers are held to (`[domain]`), which field texts name as
//! `{chfid_length}` so that the expected form follows the configuration.
//! Must never: let a reply go out with an unfilled `{placeholder}`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::compose::{self, FitRules};
use crate::domain::{ChfidRule, Gender, Language, Relationship};

#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    #[error("cannot read the officer grammar {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("officer grammar {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The commands, in the order HELP lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommandKind {
    Register,
    Add,
    Renew,
    Status,
    Pending,
    Pin,
    Help,
}

impl CommandKind {
    pub const ALL: [CommandKind; 7] = [
        CommandKind::Register,
        CommandKind::Add,
        CommandKind::Renew,
        CommandKind::Status,
        CommandKind::Pending,
        CommandKind::Pin,
        CommandKind::Help,
    ];

    /// The section name in the grammar file, and the name in the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Register => "register",
            CommandKind::Add => "add",
            CommandKind::Renew => "renew",
            CommandKind::Status => "status",
            CommandKind::Pending => "pending",
            CommandKind::Pin => "pin",
            CommandKind::Help => "help",
        }
    }

    /// Commands that change something, and so carry the officer's PIN.
    pub fn writes(self) -> bool {
        matches!(
            self,
            CommandKind::Register | CommandKind::Add | CommandKind::Renew | CommandKind::Pin
        )
    }
}

/// The fields an error reply can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Pin,
    Chfid,
    FamilyChfid,
    LastName,
    OtherNames,
    Dob,
    Gender,
    Village,
    Phone,
    Product,
    Relationship,
    Page,
    NewPin,
    Command,
}

impl Field {
    const ALL: [Field; 14] = [
        Field::Pin,
        Field::Chfid,
        Field::FamilyChfid,
        Field::LastName,
        Field::OtherNames,
        Field::Dob,
        Field::Gender,
        Field::Village,
        Field::Phone,
        Field::Product,
        Field::Relationship,
        Field::Page,
        Field::NewPin,
        Field::Command,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Field::Pin => "pin",
            Field::Chfid => "chfid",
            Field::FamilyChfid => "family_chfid",
            Field::LastName => "last_name",
            Field::OtherNames => "other_names",
            Field::Dob => "dob",
            Field::Gender => "gender",
            Field::Village => "village",
            Field::Phone => "phone",
            Field::Product => "product",
            Field::Relationship => "relationship",
            Field::Page => "page",
            Field::NewPin => "new_pin",
            Field::Command => "command",
        }
    }
}

/// Every text key the code renders; the file must define each in both languages.
const TEXTS: &[&str] = &[
    "bad_field",
    "missing_field",
    "extra_words",
    "dob_future",
    "bad_char",
    "help",
    "not_active",
    "no_pin",
    "activation_sms",
    "activation_wrong",
    "activation_void",
    "wrong_pin",
    "locked",
    "village_not_yours",
    "family_not_yours",
    "chfid_taken",
    "not_registered",
    "product_not_sold",
    "no_product",
    "registered",
    "added",
    "added_no_policy",
    "added_cn",
    "added_due",
    "renewed",
    "renew_waiting",
    "not_renewable",
    "status",
    "status_none",
    "pending",
    "pending_next",
    "pending_none",
    "pin_changed",
    "pin_mismatch",
    "head_registered",
    "head_renewed",
    "cn_pending",
    "incomplete",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFile {
    keywords: Vec<String>,
    sw: String,
    en: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WordsFile {
    new: Vec<String>,
    male: Vec<String>,
    female: Vec<String>,
    other: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldText {
    pub name: String,
    pub bad: String,
    pub expect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    sw: FieldText,
    en: FieldText,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextFile {
    sw: String,
    en: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrammarFile {
    commands: BTreeMap<String, CommandFile>,
    words: WordsFile,
    relations: BTreeMap<String, Vec<String>>,
    fields: BTreeMap<String, FieldFile>,
    texts: BTreeMap<String, TextFile>,
    /// Which placeholders are essential, shortenable or optional (see `compose`).
    #[serde(default)]
    fit: FitRules,
}

#[derive(Debug, Clone)]
struct Usage {
    keywords: Vec<String>,
    sw: String,
    en: String,
}

/// The loaded grammar. Words are kept upper-case.
#[derive(Debug, Clone)]
pub struct Grammar {
    keywords: HashMap<String, CommandKind>,
    usage: BTreeMap<CommandKind, Usage>,
    new_words: Vec<String>,
    genders: HashMap<String, Gender>,
    relations: HashMap<String, Relationship>,
    fields: HashMap<&'static str, (FieldText, FieldText)>,
    texts: HashMap<String, TextFile>,
    fit: FitRules,
    chfid_rule: ChfidRule,
}

impl Grammar {
    pub fn load(path: &Path) -> Result<Grammar, GrammarError> {
        let text = std::fs::read_to_string(path).map_err(|source| GrammarError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Grammar::parse(&text).map_err(|message| GrammarError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The grammar shipped in the repository (tests, benchmarks).
    pub fn shipped() -> Result<Grammar, GrammarError> {
        Grammar::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates/officer/commands.toml"),
        )
    }

    pub fn parse(text: &str) -> Result<Grammar, String> {
        let file: GrammarFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut keywords = HashMap::new();
        let mut usage = BTreeMap::new();
        for kind in CommandKind::ALL {
            let c = file
                .commands
                .get(kind.name())
                .ok_or_else(|| format!("[commands.{}] is missing", kind.name()))?;
            if c.keywords.is_empty() || c.sw.trim().is_empty() || c.en.trim().is_empty() {
                return Err(format!(
                    "[commands.{}] needs keywords, sw and en",
                    kind.name()
                ));
            }
            for k in &c.keywords {
                let k = k.trim().to_uppercase();
                if k.is_empty() || k.contains(char::is_whitespace) {
                    return Err(format!("keyword {k:?} must be one word"));
                }
                if let Some(other) = keywords.insert(k.clone(), kind) {
                    return Err(format!(
                        "keyword {k:?} is given to both {} and {}",
                        other.name(),
                        kind.name()
                    ));
                }
            }
            usage.insert(
                kind,
                Usage {
                    keywords: c.keywords.iter().map(|k| k.trim().to_uppercase()).collect(),
                    sw: c.sw.clone(),
                    en: c.en.clone(),
                },
            );
        }
        if let Some(extra) = file
            .commands
            .keys()
            .find(|k| !CommandKind::ALL.iter().any(|c| c.name() == k.as_str()))
        {
            return Err(format!("[commands.{extra}] is not a command"));
        }
        let upper =
            |v: &[String]| -> Vec<String> { v.iter().map(|w| w.trim().to_uppercase()).collect() };
        let mut genders = HashMap::new();
        for (words, g) in [
            (&file.words.male, Gender::Male),
            (&file.words.female, Gender::Female),
            (&file.words.other, Gender::Other),
        ] {
            for w in upper(words) {
                genders.insert(w, g);
            }
        }
        let mut relations = HashMap::new();
        for (id, words) in &file.relations {
            let rel = id
                .parse::<u8>()
                .ok()
                .and_then(Relationship::from_id)
                .ok_or_else(|| {
                    format!("[relations] {id:?} is not an openIMIS relation id (1-8)")
                })?;
            relations.insert(id.clone(), rel);
            for w in upper(words) {
                relations.insert(w, rel);
            }
        }
        let mut fields = HashMap::new();
        for f in Field::ALL {
            let ff = file
                .fields
                .get(f.key())
                .ok_or_else(|| format!("[fields.{}] is missing", f.key()))?;
            fields.insert(f.key(), (ff.sw.clone(), ff.en.clone()));
        }
        for t in TEXTS {
            let tf = file
                .texts
                .get(*t)
                .ok_or_else(|| format!("[texts] {t} is missing"))?;
            if tf.sw.trim().is_empty() || tf.en.trim().is_empty() {
                return Err(format!("[texts] {t} needs sw and en"));
            }
        }
        file.fit.validate()?;
        Ok(Grammar {
            keywords,
            usage,
            new_words: upper(&file.words.new),
            genders,
            relations,
            fields,
            texts: file.texts.into_iter().collect(),
            fit: file.fit,
            chfid_rule: ChfidRule::default(),
        })
    }

    /// This grammar with `rule` for typed CHFIDs (`[domain]`; the default is openIMIS
    /// Tanzania's CHF rule).
    pub fn with_chfid_rule(mut self, rule: ChfidRule) -> Grammar {
        self.chfid_rule = rule;
        self
    }

    /// The rule a typed CHFID of a new member must pass, and that tells a mistyped number
    /// from an unregistered one.
    pub fn chfid_rule(&self) -> ChfidRule {
        self.chfid_rule
    }

    /// The command a (first) word names.
    pub fn command(&self, word: &str) -> Option<CommandKind> {
        self.keywords.get(&word.to_uppercase()).copied()
    }

    pub fn is_new(&self, word: &str) -> bool {
        let w = word.to_uppercase();
        self.new_words.contains(&w)
    }

    pub fn gender(&self, word: &str) -> Option<Gender> {
        self.genders.get(&word.to_uppercase()).copied()
    }

    pub fn relationship(&self, word: &str) -> Option<Relationship> {
        self.relations.get(&word.to_uppercase()).copied()
    }

    /// The keyword an officer of `lang` is shown for `kind` (the first listed in that
    /// language's usage line, else the first keyword).
    pub fn keyword(&self, kind: CommandKind, lang: Language) -> &str {
        let Some(u) = self.usage.get(&kind) else {
            return kind.name();
        };
        let line = match lang {
            Language::Sw => &u.sw,
            Language::En => &u.en,
        };
        let first = line.split_whitespace().next().unwrap_or("").to_uppercase();
        u.keywords
            .iter()
            .find(|k| **k == first)
            .or_else(|| u.keywords.first())
            .map(String::as_str)
            .unwrap_or(kind.name())
    }

    pub fn usage(&self, kind: CommandKind, lang: Language) -> &str {
        match (self.usage.get(&kind), lang) {
            (Some(u), Language::Sw) => &u.sw,
            (Some(u), Language::En) => &u.en,
            (None, _) => "",
        }
    }

    /// How `field` is called, what is wrong with a bad value, and the right form (with
    /// `{chfid_length}` filled from the CHFID rule).
    pub fn field(&self, field: Field, lang: Language) -> FieldText {
        let length = self.chfid_rule.length.to_string();
        let vars = [("chfid_length", length.as_str())];
        let filled = |f: &FieldText| FieldText {
            name: f.name.clone(),
            bad: f.bad.clone(),
            expect: fill(&f.expect, &vars),
        };
        match (self.fields.get(field.key()), lang) {
            (Some((sw, _)), Language::Sw) => filled(sw),
            (Some((_, en)), Language::En) => filled(en),
            (None, _) => FieldText {
                name: field.key().to_string(),
                bad: "?".into(),
                expect: String::new(),
            },
        }
    }

    /// Renders text `key` with `vars`. An unknown placeholder is left out rather than sent
    /// raw (the file was checked at load, so this only happens to a typo in a new text).
    pub fn text(&self, key: &str, lang: Language, vars: &[(&str, &str)]) -> String {
        match self.body(key, lang) {
            Some(body) => fill(body, vars),
            None => key.to_string(),
        }
    }

    /// Text `key` as written in `lang`.
    fn body(&self, key: &str, lang: Language) -> Option<&str> {
        let t = self.texts.get(key)?;
        Some(match lang {
            Language::Sw => &t.sw,
            Language::En => &t.en,
        })
    }

    /// Renders text `key` with `vars` so that it fits in the SMS limit without shortening
    /// an essential value ([`compose::compose`] with the file's `[fit]` marking).
    pub fn compose(&self, key: &str, lang: Language, vars: &[(&str, &str)]) -> String {
        match self.body(key, lang) {
            Some(body) => compose::compose(body, vars, &self.fit),
            None => key.to_string(),
        }
    }

    /// Every reply text that might not fit (see [`compose::check`]): `(key, language,
    /// problem)`, sorted by key.
    pub fn check_fit(&self) -> Vec<(String, Language, String)> {
        let mut out = Vec::new();
        let mut keys: Vec<&String> = self.texts.keys().collect();
        keys.sort();
        for key in keys {
            let t = &self.texts[key];
            for (lang, body) in [(Language::Sw, &t.sw), (Language::En, &t.en)] {
                if let Some(problem) = compose::check(body, &self.fit) {
                    out.push((key.clone(), lang, problem));
                }
            }
        }
        out
    }
}

/// Fills each `{name}` of `text` from `vars` (an unknown one is left out).
pub(super) fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
                    out.push_str(v);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_grammar_loads_and_knows_both_languages() {
        let g = Grammar::shipped().unwrap();
        assert_eq!(g.command("sajili"), Some(CommandKind::Register));
        assert_eq!(g.command("Reg"), Some(CommandKind::Register));
        assert_eq!(g.command("HUISHA"), Some(CommandKind::Renew));
        assert_eq!(g.keyword(CommandKind::Add, Language::Sw), "ONGEZA");
        assert_eq!(g.keyword(CommandKind::Add, Language::En), "ADD");
        assert_eq!(g.gender("ke"), Some(Gender::Female));
        assert_eq!(g.relationship("mtoto"), Some(Relationship::Child));
        assert_eq!(g.relationship("8"), Some(Relationship::Spouse));
        assert!(g.is_new("mpya"));
        let t = g.text(
            "bad_field",
            Language::En,
            &[
                ("field", "DOB"),
                ("got", "31/02/1990"),
                ("bad", "is not a date"),
                ("expect", "use DD/MM/YYYY"),
            ],
        );
        assert_eq!(t, "DOB \"31/02/1990\" is not a date; use DD/MM/YYYY");
    }

    #[test]
    fn a_broken_grammar_is_refused_with_the_reason() {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates/officer/commands.toml"),
        )
        .unwrap();
        let dup = shipped.replace(
            "keywords = [\"ADD\", \"ONGEZA\"]",
            "keywords = [\"ADD\", \"REG\"]",
        );
        assert!(Grammar::parse(&dup).unwrap_err().contains("REG"));
        let no_text = shipped.replace("pin_changed = ", "pin_changed_x = ");
        assert!(Grammar::parse(&no_text)
            .unwrap_err()
            .contains("pin_changed"));
        let bad_rel = shipped.replace("8 = [\"SPOUSE\"", "9 = [\"SPOUSE\"");
        assert!(Grammar::parse(&bad_rel).unwrap_err().contains("9"));
    }
}
