//! Menus as data: `menus/*.toml`, merged into one set of screens (format in menus/README.md).
//!
//! Owns: parsing and compiling the menu files (screens, options, validators, action outcomes,
//! texts, declared variables), refusing a set that the engine could not run (unknown screen,
//! text or action, a bad regex, no `home`), and rendering a screen's text in a language.
//! Must never: run an action or touch the store; judge lengths or reachability (that is
//! [`super::lint`], which reports instead of refusing, so an officer's long text is a CI
//! failure and not an outage).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::domain::{Chfid, ChfidRule, Language};

/// The screen every session starts on and `00` returns to.
pub const HOME: &str = "home";
/// The first screen of a phone registered against a health facility (issue 21), if the
/// menus have it.
pub const FACILITY_HOME: &str = "facility_home";

/// Texts the engine itself shows; every menu set must translate them.
pub const SYSTEM_TEXTS: &[&str] = &[
    "resume",
    "holding",
    "timeout",
    "session_over",
    "invalid_choice",
    "menu_changed",
    "error",
    "nav_back",
    "nav_home",
    "nav_more",
    "late_result",
    "rate_limited",
];

#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    #[error("cannot read menus in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("menus are not valid:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A text in both languages, as written in the file (a missing one is a lint problem).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub sw: Option<String>,
    pub en: Option<String>,
}

impl Text {
    /// The text in `lang`, falling back to the other language, then to "".
    pub fn get(&self, lang: Language) -> &str {
        let (first, second) = match lang {
            Language::Sw => (&self.sw, &self.en),
            Language::En => (&self.en, &self.sw),
        };
        first
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(second.as_deref())
            .unwrap_or("")
    }

    pub fn raw(&self, lang: Language) -> Option<&str> {
        match lang {
            Language::Sw => self.sw.as_deref(),
            Language::En => self.en.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    /// Values are kept in the GSM alphabet (the engine replaces anything else with `?`).
    #[default]
    Gsm,
    /// Values may need UCS2.
    Ucs2,
}

/// A variable's bounds, for the length lint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarDecl {
    pub max_len: usize,
    #[serde(default)]
    pub charset: Charset,
    /// Most lines the value has (a multi-line value, or the items of a `choice` list), each
    /// at most `max_len` characters.
    #[serde(default)]
    pub max_items: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Text and numbered options.
    Menu,
    /// Free input, validated, stored in `var`.
    Input,
    /// Pick one item of a list an action produced.
    Choice,
    /// Not shown: runs `action` and follows `on.<outcome>`.
    Action,
    /// Final text; closes the session.
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDef {
    pub key: String,
    pub sw: Option<String>,
    pub en: Option<String>,
    pub next: String,
    /// Variables set when this option is picked (`set = { lang = "en" }`).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

impl OptionDef {
    pub fn label(&self) -> Text {
        Text {
            sw: self.sw.clone(),
            en: self.en.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ValidatorDef {
    Regex {
        pattern: String,
    },
    /// A CHFID: passes the configured rule (`[domain]`), or is a member's number as typed.
    Chfid,
    Range {
        min: i64,
        max: i64,
    },
    /// `DDMMYYYY` (what a keypad can type).
    Date,
}

/// Where an action outcome leads, with an optional notice shown on top of that screen.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TargetDef {
    Screen(String),
    WithNotice { next: String, notice: String },
}

impl TargetDef {
    pub fn screen(&self) -> &str {
        match self {
            TargetDef::Screen(s) | TargetDef::WithNotice { next: s, .. } => s,
        }
    }
    pub fn notice(&self) -> Option<&str> {
        match self {
            TargetDef::Screen(_) => None,
            TargetDef::WithNotice { notice, .. } => Some(notice),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenDef {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub sw: Option<String>,
    pub en: Option<String>,
    #[serde(default)]
    pub options: Vec<OptionDef>,
    /// Input and choice: the variable the answer is stored in.
    pub var: Option<String>,
    pub validate: Option<ValidatorDef>,
    /// Input: text key of the message shown when the answer is invalid.
    pub invalid: Option<String>,
    pub max_tries: Option<u8>,
    /// Input: where to go after `max_tries` wrong answers.
    pub on_exhausted: Option<String>,
    /// Choice: the list to pick from.
    pub items: Option<String>,
    /// Choice: where to go when the list is empty.
    pub empty: Option<String>,
    /// Input and choice: where to go with a valid answer.
    pub next: Option<String>,
    pub action: Option<String>,
    #[serde(default)]
    pub on: BTreeMap<String, TargetDef>,
    /// The author accepts that this screen may need several pages.
    #[serde(default)]
    pub paginate: bool,
}

impl ScreenDef {
    pub fn text(&self) -> Text {
        Text {
            sw: self.sw.clone(),
            en: self.en.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuFile {
    #[serde(default)]
    vars: BTreeMap<String, VarDecl>,
    #[serde(default)]
    texts: BTreeMap<String, Text>,
    #[serde(default)]
    screens: BTreeMap<String, ScreenDef>,
}

/// The variable the engine fills with the configured CHFID length (`[domain]
/// chfid_length`), so texts name the expected form: "tarakimu {chfid_length}".
pub const CHFID_LENGTH: &str = "chfid_length";

/// A compiled validator.
#[derive(Debug, Clone)]
pub enum Validator {
    Regex(regex::Regex),
    Chfid,
    Range { min: i64, max: i64 },
    Date,
}

impl Validator {
    /// The normalised answer, or `None` if it is not valid. A CHFID is held to `rule`; one
    /// that fails it may still be a member's (see [`Validator::typed_chfid`]).
    pub fn check(&self, input: &str, rule: &ChfidRule) -> Option<String> {
        let s = input.trim();
        match self {
            Validator::Regex(re) => re.is_match(s).then(|| s.to_string()),
            Validator::Chfid => rule.parse(s).ok().map(|c| c.to_string()),
            Validator::Range { min, max } => s
                .parse::<i64>()
                .ok()
                .filter(|n| (*min..=*max).contains(n))
                .map(|n| n.to_string()),
            Validator::Date => NaiveDate::parse_from_str(s, "%d%m%Y")
                .ok()
                .map(|d| d.format("%Y-%m-%d").to_string()),
        }
    }

    /// For a CHFID answer that fails the rule: the number as typed, for the engine to look
    /// up (a number the central database holds is found whatever the rule says of it).
    pub fn typed_chfid(&self, input: &str) -> Option<Chfid> {
        match self {
            Validator::Chfid => Chfid::from_central(input).ok(),
            _ => None,
        }
    }
}

/// One screen, with where it was defined (for messages).
#[derive(Debug, Clone)]
pub struct Screen {
    pub id: String,
    pub file: String,
    pub def: ScreenDef,
    pub validator: Option<Validator>,
}

/// Every screen, text and variable of one menus directory.
#[derive(Debug, Clone, Default)]
pub struct Menus {
    pub screens: HashMap<String, Screen>,
    pub texts: BTreeMap<String, (String, Text)>,
    pub vars: BTreeMap<String, VarDecl>,
}

impl Menus {
    /// Loads `dir/*.toml`. `actions` are the names the engine can run.
    pub fn load(dir: &Path, actions: &[&str]) -> Result<Menus, MenuError> {
        let (menus, problems) = Menus::parse(dir, actions)?;
        if problems.is_empty() {
            Ok(menus)
        } else {
            Err(MenuError::Invalid(problems))
        }
    }

    /// Parses what it can and lists what stops the engine from running these menus.
    pub fn parse(dir: &Path, actions: &[&str]) -> Result<(Menus, Vec<String>), MenuError> {
        let read_err = |source| MenuError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
            .collect();
        paths.sort();
        let mut menus = Menus::default();
        let mut problems = Vec::new();
        for path in paths {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| MenuError::Read {
                path: path.clone(),
                source,
            })?;
            let parsed: MenuFile = match toml::from_str(&text) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(format!("{file}: {}", e.message()));
                    continue;
                }
            };
            for (name, decl) in parsed.vars {
                if menus.vars.insert(name.clone(), decl).is_some() {
                    problems.push(format!("{file}: variable {name} is declared twice"));
                }
            }
            for (key, t) in parsed.texts {
                if let Some((other, _)) = menus.texts.insert(key.clone(), (file.clone(), t)) {
                    problems.push(format!("{file}: text {key} is also defined in {other}"));
                }
            }
            for (id, def) in parsed.screens {
                let validator = match &def.validate {
                    None => None,
                    Some(ValidatorDef::Regex { pattern }) => match regex::Regex::new(pattern) {
                        Ok(re) => Some(Validator::Regex(re)),
                        Err(e) => {
                            problems.push(format!("{file}: screen {id}: bad regex: {e}"));
                            None
                        }
                    },
                    Some(ValidatorDef::Chfid) => Some(Validator::Chfid),
                    Some(ValidatorDef::Range { min, max }) => Some(Validator::Range {
                        min: *min,
                        max: *max,
                    }),
                    Some(ValidatorDef::Date) => Some(Validator::Date),
                };
                let screen = Screen {
                    id: id.clone(),
                    file: file.clone(),
                    def,
                    validator,
                };
                if let Some(other) = menus.screens.insert(id.clone(), screen) {
                    problems.push(format!(
                        "{file}: screen {id} is also defined in {}",
                        other.file
                    ));
                }
            }
        }
        problems.extend(menus.structure_problems(actions));
        Ok((menus, problems))
    }

    /// References that do not resolve, and fields a screen type needs but lacks.
    fn structure_problems(&self, actions: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        if !self.screens.contains_key(HOME) {
            out.push(format!(
                "no screen named {HOME:?} (every session starts there)"
            ));
        }
        for key in SYSTEM_TEXTS {
            if !self.texts.contains_key(*key) {
                out.push(format!("missing system text [texts.{key}]"));
            }
        }
        let mut ids: Vec<&String> = self.screens.keys().collect();
        ids.sort();
        for id in ids {
            let s = &self.screens[id];
            let at = format!("{}: screen {id}", s.file);
            let d = &s.def;
            let screen_ref = |target: &str, what: &str, out: &mut Vec<String>| {
                if !self.screens.contains_key(target) {
                    out.push(format!("{at}: {what} {target:?} is not a screen"));
                }
            };
            let text_ref = |key: &str, what: &str, out: &mut Vec<String>| {
                if !self.texts.contains_key(key) {
                    out.push(format!("{at}: {what} {key:?} is not in [texts]"));
                }
            };
            for o in &d.options {
                screen_ref(&o.next, &format!("option {} leads to", o.key), &mut out);
            }
            let needs = |field: &str, present: bool, out: &mut Vec<String>| {
                if !present {
                    out.push(format!("{at}: a {:?} screen needs `{field}`", d.kind));
                }
            };
            match d.kind {
                Kind::Menu => needs("options", !d.options.is_empty(), &mut out),
                Kind::Input => {
                    needs("var", d.var.is_some(), &mut out);
                    needs("next", d.next.is_some(), &mut out);
                }
                Kind::Choice => {
                    needs("var", d.var.is_some(), &mut out);
                    needs("items", d.items.is_some(), &mut out);
                    needs("next", d.next.is_some(), &mut out);
                }
                Kind::Action => {
                    needs("action", d.action.is_some(), &mut out);
                    needs("on.ok", d.on.contains_key("ok"), &mut out);
                    if let Some(a) = &d.action {
                        if !actions.contains(&a.as_str()) {
                            out.push(format!(
                                "{at}: action {a:?} is not one the engine has ({})",
                                actions.join(", ")
                            ));
                        }
                    }
                }
                Kind::End => {}
            }
            for (what, target) in [
                ("next", &d.next),
                ("on_exhausted", &d.on_exhausted),
                ("empty", &d.empty),
            ] {
                if let Some(t) = target {
                    screen_ref(t, what, &mut out);
                }
            }
            for (outcome, t) in &d.on {
                screen_ref(t.screen(), &format!("on.{outcome}"), &mut out);
                if let Some(n) = t.notice() {
                    text_ref(n, &format!("on.{outcome} notice"), &mut out);
                }
            }
            if let Some(k) = &d.invalid {
                text_ref(k, "invalid", &mut out);
            }
            if let Some(items) = &d.items {
                if !self.vars.contains_key(items) {
                    out.push(format!("{at}: items {items:?} is not a declared variable"));
                }
            }
        }
        out
    }

    pub fn screen(&self, id: &str) -> Option<&Screen> {
        self.screens.get(id)
    }

    /// A `[texts]` entry in `lang` ("" if the key is unknown).
    pub fn text(&self, key: &str, lang: Language) -> &str {
        self.texts.get(key).map(|(_, t)| t.get(lang)).unwrap_or("")
    }
}

/// Fills `{name}` with `value(name)`; an unknown name renders as nothing.
pub fn render(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&value(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{names}` a template uses.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_normalise_what_they_accept() {
        let tz = ChfidRule::default();
        assert_eq!(
            Validator::Chfid.check(" 070707070 ", &tz),
            Some("070707070".into())
        );
        assert_eq!(Validator::Chfid.check("070707071", &tz), None);
        assert_eq!(Validator::Chfid.check("12345", &tz), None);
        let r = Validator::Range { min: 1, max: 12 };
        assert_eq!(r.check("07", &tz), Some("7".into()));
        assert_eq!(r.check("13", &tz), None);
        assert_eq!(r.check("x", &tz), None);
        assert_eq!(
            Validator::Date.check("31012026", &tz),
            Some("2026-01-31".into())
        );
        assert_eq!(Validator::Date.check("31022026", &tz), None);
        let re = Validator::Regex(regex::Regex::new("^[0-9]{4}$").unwrap());
        assert_eq!(re.check("1234", &tz), Some("1234".into()));
        assert_eq!(re.check("12a4", &tz), None);
    }

    #[test]
    fn the_chfid_validator_follows_the_configured_rule() {
        let eight = ChfidRule {
            length: 8,
            check: crate::domain::ChfidCheck::None,
        };
        assert_eq!(
            Validator::Chfid.check("07070707", &eight),
            Some("07070707".into())
        );
        assert_eq!(Validator::Chfid.check("070707070", &eight), None);
        // What fails the rule is still offered for lookup, as typed; other validators never.
        assert_eq!(
            Validator::Chfid
                .typed_chfid(" 070707071 ")
                .map(|c| c.to_string()),
            Some("070707071".into())
        );
        assert_eq!(Validator::Chfid.typed_chfid("07 07"), None);
        assert_eq!(Validator::Date.typed_chfid("070707071"), None);
    }

    #[test]
    fn render_fills_known_names_and_drops_unknown_ones() {
        let v = |n: &str| (n == "cn").then(|| "9911".to_string());
        assert_eq!(render("Namba {cn}{x} {", v), "Namba 9911 {");
        assert_eq!(placeholders("{a} and {b}"), vec!["a", "b"]);
    }
}

/// The navigation keys, from `[ussd]` in the configuration.
#[derive(Debug, Clone)]
pub struct NavKeys {
    pub back: String,
    pub home: String,
    pub more: String,
}

impl Default for NavKeys {
    fn default() -> Self {
        NavKeys {
            back: "0".into(),
            home: "00".into(),
            more: "98".into(),
        }
    }
}

impl Menus {
    /// The lines of `screen` before pagination: an optional notice, the text, then the
    /// options (or the items of a choice). `var` gives variable values, `items` list labels.
    pub fn body_lines(
        &self,
        screen: &Screen,
        lang: Language,
        notice: Option<&str>,
        var: &dyn Fn(&str) -> Option<String>,
        items: &[String],
    ) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        if let Some(n) = notice.filter(|n| !n.is_empty()) {
            lines.extend(n.lines().map(str::to_string));
        }
        let text = render(screen.def.text().get(lang), var);
        lines.extend(text.lines().map(str::to_string));
        for o in &screen.def.options {
            let label = render(o.label().get(lang), var);
            lines.push(format!("{} {label}", o.key));
        }
        for (i, label) in items.iter().enumerate() {
            lines.push(format!("{} {label}", i + 1));
        }
        lines
    }

    /// The navigation labels for `screen` in `lang`.
    pub fn footer(&self, screen: &Screen, lang: Language, keys: &NavKeys) -> super::Footer {
        let more = format!("{} {}", keys.more, self.text("nav_more", lang));
        let nav = if screen.id == HOME || screen.id == FACILITY_HOME || screen.def.kind == Kind::End
        {
            String::new()
        } else {
            format!(
                "{} {} {} {}",
                keys.back,
                self.text("nav_back", lang),
                keys.home,
                self.text("nav_home", lang)
            )
        };
        super::Footer { more, nav }
    }
}
