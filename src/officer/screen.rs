//! The officer commands' screening of an MO before it is stored: the PIN is checked here and
//! replaced by `****`, so that it never reaches the disk (not in the MO, not in its
//! redelivery key, not in the audit trail).
//!
//! Owns: [`Verified`], the note kept with the MO (what the checks found), and [`screen`].
//! Must never: return or keep a PIN, a new PIN or an activation code in clear or as a cheap
//! hash (a new PIN is kept only as the salted Argon2 hash the officer record gets anyway),
//! or verify a PIN while the officer is locked out (the activation code excepted, as in
//! [`super::activation`]).
//!
//! Why here and not in the worker: the worker runs after the MO is stored, and the store is
//! an append-only log: what was written once stays in its files until compaction. The
//! worker trusts the note ([`super::auth::Proof::Checked`]): it never sees the PIN.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{activation, audit, auth, change_pin, parse, Command, Officers};
use crate::domain::{eat_date, pin, Msisdn};
use crate::sms::router::Screened;
use crate::store::{codec, Store, StoreError};

/// Stands for a PIN in a stored text.
pub const MASK: &str = "****";
/// What the worker parses in place of [`MASK`]: a PIN of the right form (the PIN itself was
/// checked before the MO was stored, and the outcome is in the note).
const PLACEHOLDER: &str = "0000";

/// What the checks before storing found; kept with the MO (`sms.mo.note`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The command parsed, with a PIN (false: an invalid text; its PIN-like word masked).
    pub parsed: bool,
    /// The PIN (the PIN command's old PIN) matches the officer's PIN hash. False when the
    /// officer was locked out (not checked) or has no PIN.
    pub pin_ok: bool,
    /// PIN command: the old-PIN word matches the officer's waiting activation code (`None`:
    /// no code waiting).
    pub code_ok: Option<bool>,
    /// PIN command: the two new PINs are the same.
    pub new_pins_match: bool,
    /// PIN command: the new PIN's salted Argon2 hash, when the two match.
    pub new_pin_hash: Option<String>,
}

impl Verified {
    /// The note as stored.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self).unwrap_or_default()
    }

    /// The note of MO `mo_id`, if it was screened (an undecodable note is none: its PIN
    /// then counts as wrong, see [`Verified::proof_text`]).
    pub fn of_mo(store: &Store, mo_id: crate::domain::Id) -> Result<Option<Verified>, StoreError> {
        Ok(crate::sms::inbound::note(store, mo_id)?.and_then(|raw| codec::decode(&raw).ok()))
    }
}

/// The text the worker parses: a screened text with its masks back as a PIN of the right
/// form, so that the command parses as it did before it was stored.
pub fn proof_text(text: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '*');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(i) = rest.find(MASK) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let prev = head.chars().last().or(before);
        let after = tail[MASK.len()..].chars().next();
        out.push_str(if word(prev) || word(after) {
            MASK
        } else {
            PLACEHOLDER
        });
        // The mask ends in '*': a second one right after is part of the same word.
        before = Some('*');
        rest = &tail[MASK.len()..];
    }
    out.push_str(rest);
    out
}

/// Screens an MO from `from` (see the module doc). `None`: nothing to mask (not an officer's
/// command with a PIN, and no PIN-like word).
pub fn screen(
    officers: &Officers,
    store: &Store,
    from: &Msisdn,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Option<Screened>, StoreError> {
    let Some(officer) = store.officer_by_phone(from)? else {
        // No officer's: HELP answers it, and it is stored as sent (it is no command).
        return Ok(None);
    };
    let cmd = match parse::parse(&officers.grammar, text, eat_date(now)) {
        Ok(c) => c,
        // An invalid command runs nothing (no PIN check): two that differ only in the
        // masked word may pass for copies of each other.
        Err(_) => {
            let pins = pin_like(text);
            return Ok(masked(text, &pins, Verified::default(), Vec::new()));
        }
    };
    let Some(given) = cmd.pin() else {
        return Ok(None);
    };
    let mut pins = vec![given.to_string()];
    let mut v = Verified {
        parsed: true,
        ..Verified::default()
    };
    if let Command::ChangePin { new, repeat, .. } = &cmd {
        pins.push(new.clone());
        pins.push(repeat.clone());
        v.new_pins_match = new == repeat;
        if v.new_pins_match {
            v.new_pin_hash = change_pin::hash_new(new).ok();
        }
        if let Some(code) = activation::live_code_hash(store, officer.id, now)? {
            v.code_ok = Some(pin::verify(given, &code));
        }
    }
    let locked = auth::pin_state(store, officer.id)?
        .locked_until_ms
        .is_some_and(|until| now.timestamp_millis() < until);
    // The activation check also asks whether the word is the PIN, even while locked out.
    // While locked and no code waits, nothing is checked: every PIN is refused anyway, and
    // two guesses may pass for copies of each other (the key is empty).
    let mut key = Vec::new();
    if !locked || v.code_ok.is_some() {
        if let Some(stored) = officer.pin_hash.as_deref() {
            (v.pin_ok, key) = pin::verify_output(given, stored);
        }
    }
    Ok(masked(text, &pins, v, key))
}

/// The PIN-like second word of a text, when it has the form of a PIN.
fn pin_like(text: &str) -> Vec<String> {
    audit::pin_like_second_word(text)
        .into_iter()
        .filter(|w| pin::check_format(w).is_ok())
        .collect()
}

fn masked(text: &str, pins: &[String], v: Verified, key: Vec<u8>) -> Option<Screened> {
    if pins.is_empty() && !v.parsed {
        return None;
    }
    Some(Screened {
        text: audit::mask_text(text, pins),
        note: v.encode(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_parse_again_as_a_pin_of_the_right_form() {
        assert_eq!(proof_text("REG **** NEW Mushi"), "REG 0000 NEW Mushi");
        assert_eq!(proof_text("PIN ****,**** ****"), "PIN 0000,0000 0000");
        // Stars inside a word are no mask.
        assert_eq!(proof_text("REG a**** x"), "REG a**** x");
        assert_eq!(proof_text("HALI 100000014"), "HALI 100000014");
    }

    #[test]
    fn a_pin_like_word_is_one_of_pin_form() {
        assert_eq!(pin_like("REG 1234 x"), vec!["1234".to_string()]);
        assert!(pin_like("REG 12 x").is_empty());
        assert!(pin_like("HALI 100000014").is_empty());
        let s = masked(
            "SAJILI 9999 y",
            &pin_like("SAJILI 9999 y"),
            Verified::default(),
            vec![],
        );
        assert_eq!(s.map(|s| s.text), Some("SAJILI **** y".to_string()));
        assert_eq!(masked("HELP", &[], Verified::default(), vec![]), None);
    }
}
