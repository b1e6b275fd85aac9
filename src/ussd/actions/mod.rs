//! The Rust actions a menu can name (`action = "coverage"`), run by the engine on a blocking
//! thread under the hop budget.
//!
//! Owns: the registry of action names, what an action receives ([`ActionCtx`]: store,
//! caller, language, today, the session variables, the journal key) and returns
//! ([`Outcome`]: an outcome name the menu maps to a screen, variables, lists).
//! Must never: render screen text (menus do), write a session, or commit a side effect
//! without journaling it in the same transaction (see [`renew`]).

pub mod coverage;
pub mod facility;
pub mod payments;
pub mod renew;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::GepgMode;
use crate::domain::privacy::{phone_linked, Privacy};
use crate::domain::{Id, Insuree, Language, Msisdn};
use crate::sms::Templates;
use crate::store::{Store, StoreError};

/// Every action the engine can run; menus naming another fail to load.
pub const NAMES: &[&str] = &[
    "coverage",
    "families",
    "renew_quote",
    "renew_confirm",
    "control_numbers",
    "set_language",
    "facility_verify",
];

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store write failed: {0}")]
    Write(String),
    #[error("SMS template: {0}")]
    Template(#[from] crate::sms::TemplateError),
    #[error("no action named {0:?}")]
    Unknown(String),
}

/// What an action needs; owned, so it can move to a blocking thread.
#[derive(Clone)]
pub struct ActionCtx {
    pub store: Store,
    pub templates: Arc<Templates>,
    pub gepg: GepgMode,
    /// What a caller not linked to the family may see (`[privacy]`).
    pub privacy: Privacy,
    pub msisdn: Msisdn,
    pub lang: Language,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    pub vars: BTreeMap<String, String>,
    /// `msisdn/journey/step`: the key an action with side effects journals under.
    pub journal_key: String,
    /// The SMS cost guard for SMS to a phone not linked to the family (`None`: no cap).
    pub sms_guard: Option<Arc<crate::sms::cost_guard::CostGuard>>,
}

impl ActionCtx {
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or("")
    }

    /// Whether the caller's phone is linked to `family` (the head's or a member's phone on
    /// file). Only as strong as the gateway's msisdn: a gateway that lets callers spoof it
    /// must be closed at the route (see the README's threat model).
    pub fn linked_to(&self, family: Id) -> Result<bool, StoreError> {
        let members = self.store.family_members(family)?;
        Ok(phone_linked(
            &self.msisdn,
            members.iter().filter_map(|m| m.phone.as_ref()),
        ))
    }
}

/// The result of an action: the outcome the menu maps (`ok`, `not_found`...), variables for
/// the next screens, lists for `choice` screens, and a language change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub name: String,
    pub vars: BTreeMap<String, String>,
    pub lists: BTreeMap<String, Vec<(String, String)>>,
    pub lang: Option<Language>,
}

impl Outcome {
    pub fn named(name: &str) -> Outcome {
        Outcome {
            name: name.to_string(),
            ..Outcome::default()
        }
    }

    pub fn var(mut self, name: &str, value: impl Into<String>) -> Outcome {
        self.vars.insert(name.to_string(), value.into());
        self
    }
}

/// Runs the action `name`.
pub fn run(name: &str, ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    match name {
        "coverage" => coverage::coverage(ctx),
        "families" => coverage::families(ctx),
        "renew_quote" => renew::quote(ctx),
        "renew_confirm" => renew::confirm(ctx),
        "control_numbers" => payments::control_numbers(ctx),
        "set_language" => set_language(ctx),
        "facility_verify" => facility::verify(ctx),
        other => Err(ActionError::Unknown(other.to_string())),
    }
}

fn set_language(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let Some(lang) = Language::parse(ctx.var("lang")) else {
        return Ok(Outcome::named("error"));
    };
    super::session::set_language(&ctx.store, &ctx.msisdn, lang).map_err(|e| match e {
        super::session::SessionError::Store(s) => ActionError::Store(s),
        other => ActionError::Write(other.to_string()),
    })?;
    Ok(Outcome {
        lang: Some(lang),
        ..Outcome::named("ok")
    })
}

/// A member's name as the phone shows it: first name and the initial of the surname (privacy),
/// in the GSM alphabet.
pub fn masked_name(i: &Insuree) -> String {
    let first = i.other_names.split_whitespace().next().unwrap_or("");
    let initial = i
        .last_name
        .chars()
        .next()
        .map(|c| format!(" {c}."))
        .unwrap_or_default();
    super::gsm::to_gsm(&format!("{first}{initial}"))
}
