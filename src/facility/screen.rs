//! The `HAKIKI` / `VERIFY` command's screening before the MO is stored: the staff PIN is
//! checked here (Argon2, honouring the staff lockout) and replaced by `****`, so that it
//! never reaches the disk (not in the MO, not in its redelivery key).
//!
//! Owns: [`Note`], kept with the MO (`sms.mo.note`): what the check found and, for a right
//! PIN, the answer; [`FacilityScreen`], the pipeline's screen for staff phones.
//! Must never: keep a PIN in clear or as a cheap hash (the redelivery key gets the Argon2
//! output under the staff's own salt), check a PIN while the phone is locked, or write
//! anything (the lockout is settled in the MO's transaction, [`super::sms::VerifyCommand`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::registry;
use super::sms::{answer_vars, keyword};
use crate::domain::{pin, Msisdn};
use crate::sms::router::{MoScreen, Screened, Screening};
use crate::store::{codec, Store};

/// Stands for the PIN in the stored text.
pub const MASK: &str = "****";

/// What the check before storing found; the handler answers from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Note {
    /// Not `<keyword> <PIN> <CHFID>`: nothing checked.
    Usage,
    /// The phone was locked: the PIN was not checked.
    NotChecked,
    Wrong,
    /// The PIN was right: the answer's template variables and the outcome to record.
    Right {
        vars: Vec<(String, String)>,
        outcome: String,
    },
}

impl Note {
    /// What the PIN check came to (`None`: not checked), for [`registry::settle`].
    pub fn seen(&self) -> Option<bool> {
        match self {
            Note::Usage | Note::NotChecked => None,
            Note::Wrong => Some(false),
            Note::Right { .. } => Some(true),
        }
    }
}

/// The MO pipeline's screen for staff phones (see the module doc).
pub struct FacilityScreen;

impl MoScreen for FacilityScreen {
    fn screen(&self, store: &Store, from: &Msisdn, text: &str, now: DateTime<Utc>) -> Screening {
        if keyword(text).is_none() {
            return Ok(None);
        }
        let Some(staff) = registry::staff_of(store, from)? else {
            return Ok(None);
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (note, key) = match words.as_slice() {
            [_, given, chfid] if registry::locked_until(&staff, now).is_none() => {
                match pin::verify_output(given, &staff.pin_hash) {
                    (true, key) => {
                        let (vars, outcome) = answer_vars(store, chfid, now)?;
                        let vars = vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                        let outcome = outcome.to_string();
                        (Note::Right { vars, outcome }, key)
                    }
                    (false, key) => (Note::Wrong, key),
                }
            }
            // Locked: nothing is checked, every PIN is refused; two guesses may pass for
            // copies of each other (the key is empty).
            [_, _, _] => (Note::NotChecked, Vec::new()),
            _ => (Note::Usage, Vec::new()),
        };
        Ok(Some(Screened {
            text: masked(text),
            note: codec::encode(&note).unwrap_or_default(),
            key,
        }))
    }
}

/// `text` with its second word (the PIN, when there is one) masked.
pub fn masked(text: &str) -> String {
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kw), Some(_)) => [kw, MASK]
            .into_iter()
            .chain(words)
            .collect::<Vec<_>>()
            .join(" "),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_word_is_masked() {
        assert_eq!(masked("HAKIKI 4821 070707070"), "HAKIKI **** 070707070");
        assert_eq!(masked("verify  4821"), "verify ****");
        assert_eq!(masked("HAKIKI 1 2 3"), "HAKIKI **** 2 3");
        assert_eq!(masked("HAKIKI"), "HAKIKI");
    }

    #[test]
    fn the_note_says_what_was_checked() {
        assert_eq!(Note::Usage.seen(), None);
        assert_eq!(Note::NotChecked.seen(), None);
        assert_eq!(Note::Wrong.seen(), Some(false));
        let right = Note::Right {
            vars: vec![],
            outcome: "covered".into(),
        };
        assert_eq!(right.seen(), Some(true));
        let raw = codec::encode(&right).unwrap();
        assert_eq!(codec::decode::<Note>(&raw).unwrap(), right);
    }
}
