//! One-time activation codes: how an officer imported from openIMIS (who has no PIN) or one
//! who forgot theirs gets a PIN without the administrator ever knowing it.
//!
//! Owns: aux namespace [`NS_ACTIVATION`] (officer id → the code's Argon2 hash, its expiry and
//! wrong tries), [`issue`] (the administrator's `officer send-activation`: a random 6-digit
//! code sent by SMS to the phone openIMIS has for the officer) and [`check`] (the officer's
//! `PIN <code> <new PIN> <new PIN>`, the PIN command with the code in the old PIN's place).
//! Must never: store or log the code in clear (only its hash; the SMS that carries it is the
//! one copy, in the outbox until the SMSC takes it), accept a code after it was used, after
//! it expired or after [`MAX_TRIES`] wrong ones, or send it anywhere but the officer's own
//! phone.
//!
//! Why it also works while the PIN is locked out: it is the way back for an officer who
//! forgot the PIN. Guessing is bounded by the code's own tries: 5 guesses at a 6-digit code
//! succeed with probability 5 in 1,000,000, and a new code needs the administrator.

use chrono::{DateTime, Utc};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use super::auth::{PinCheck, Proof, NS_PIN};
use super::grammar::Grammar;
use super::plan::Plan;
use super::{Ctx, OfficerError};
use crate::domain::{pin, Msisdn};
use crate::sms::{self, OutboundSms};
use crate::store::{codec, Store, StoreError, TxResult};

pub const NS_ACTIVATION: &str = "officer.activation";
/// Wrong codes before a code is void.
pub const MAX_TRIES: u32 = 5;
/// Digits of a code: more than a PIN's 4, within the PIN command's 4–8.
const DIGITS: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    /// PHC string of the code (Argon2id, as PINs).
    hash: String,
    expires_ms: i64,
    wrong: u32,
}

/// A code sent: to which phone (masked) and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub to_masked: String,
    pub until: DateTime<Utc>,
}

/// Why no code was sent.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no officer with code {0}")]
    NoOfficer(String),
    #[error(
        "officer {0} has no phone number in openIMIS (tblOfficer.Phone): nowhere to send a code"
    )]
    NoPhone(String),
    #[error(transparent)]
    Officer(#[from] OfficerError),
}

fn key(officer: crate::domain::Id) -> [u8; 8] {
    officer.to_be_bytes()
}

fn random_code() -> String {
    let n = rand::thread_rng().gen_range(0..10u32.pow(DIGITS));
    format!("{n:0width$}", width = DIGITS as usize)
}

/// Draws a code for officer `code`, keeps only its hash, and puts the SMS carrying it on the
/// outbox, in one durable write. A new code replaces an unused older one.
pub fn issue(
    store: &Store,
    grammar: &Grammar,
    officer_code: &str,
    valid: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Issued, IssueError> {
    let officer = store
        .officer_by_code(officer_code)
        .map_err(OfficerError::from)?
        .ok_or_else(|| IssueError::NoOfficer(officer_code.to_string()))?;
    let phone: Msisdn = officer
        .phone
        .clone()
        .ok_or_else(|| IssueError::NoPhone(officer.code.clone()))?;
    let code = random_code();
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let until = now + valid;
    let pending = Pending {
        hash: pin::hash(&code, salt).map_err(OfficerError::from)?,
        expires_ms: until.timestamp_millis(),
        wrong: 0,
    };
    let value = codec::encode(&pending).map_err(|source| {
        OfficerError::from(StoreError::Codec {
            tree: "aux",
            source,
        })
    })?;
    let hours = valid.num_hours().max(1).to_string();
    let text = grammar.text(
        "activation_sms",
        officer.language,
        &[
            ("code", &code),
            ("hours", &hours),
            ("officer", &officer.code),
        ],
    );
    let sms = OutboundSms {
        to: phone.clone(),
        text,
        template: "officer_activation".into(),
        language: officer.language,
        reference: format!("officer:{}", officer.code),
    };
    // The key names this code (its expiry is unique per issue), so a retried write never
    // owes the SMS twice and a later code is a new SMS.
    let idem = format!("officer:{}:activation:{}", officer.id, pending.expires_ms);
    store
        .write(|tx| -> TxResult<()> {
            tx.aux_put(NS_ACTIVATION, &key(officer.id), &value)?;
            sms::enqueue(tx, &idem, &sms)?;
            Ok(())
        })
        .map_err(|e| OfficerError::from(StoreError::from(e)))?;
    store.flush().map_err(OfficerError::from)?;
    tracing::info!(officer = %officer.code, to = %phone.masked(), "officer activation code sent");
    Ok(Issued {
        to_masked: phone.masked(),
        until,
    })
}

/// The hash of officer `officer`'s activation code, while one is waiting (not expired, not
/// void): what the PIN command's old-PIN word is checked against before its MO is stored.
pub fn live_code_hash(
    store: &Store,
    officer: crate::domain::Id,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let Some(raw) = store.aux_get(NS_ACTIVATION, &key(officer))? else {
        return Ok(None);
    };
    let Ok(p) = codec::decode::<Pending>(&raw) else {
        return Ok(None);
    };
    let live = now.timestamp_millis() < p.expires_ms && p.wrong < MAX_TRIES;
    Ok(live.then_some(p.hash))
}

/// The PIN command's old-PIN word checked as an activation code. `None`: the officer has no
/// code waiting (or it expired), so the word is an ordinary PIN. Otherwise the outcome, which
/// the caller uses in place of the PIN check: a right code also lifts any PIN lockout and is
/// used up (unless the two new PINs differ: then nothing changes); a wrong one counts against the code's tries, unless the officer has a PIN and
/// the word is that PIN.
pub fn check(
    ctx: &Ctx<'_>,
    given: &Proof<'_>,
    new_pins_match: bool,
) -> Result<Option<PinCheck>, OfficerError> {
    let k = key(ctx.officer.id).to_vec();
    let Some(raw) = ctx.store.aux_get(NS_ACTIVATION, &k)? else {
        return Ok(None);
    };
    let Ok(mut p) = codec::decode::<Pending>(&raw) else {
        return Ok(None);
    };
    if ctx.now.timestamp_millis() >= p.expires_ms || p.wrong >= MAX_TRIES {
        return Ok(None);
    }
    if given.code_matches(&p.hash) {
        if !new_pins_match {
            // Not used up by a typing slip in the new PIN.
            let reply = ctx.grammar.text("pin_mismatch", ctx.lang, &[]);
            return Ok(Some(PinCheck::Refused(Box::new(Plan::reject(reply)))));
        }
        tracing::info!(officer = %ctx.officer.code, "officer activation code used");
        return Ok(Some(PinCheck::Ok(vec![
            (NS_ACTIVATION, k.clone(), None),
            (NS_PIN, k, None),
        ])));
    }
    if ctx
        .officer
        .pin_hash
        .as_deref()
        .is_some_and(|h| given.pin_matches(h))
    {
        return Ok(None);
    }
    p.wrong += 1;
    let left = MAX_TRIES - p.wrong;
    tracing::warn!(officer = %ctx.officer.code, left, "wrong officer activation code");
    let reply = if left == 0 {
        ctx.grammar.text("activation_void", ctx.lang, &[])
    } else {
        ctx.grammar
            .text("activation_wrong", ctx.lang, &[("left", &left.to_string())])
    };
    let mut plan = Plan::reject(reply);
    let value = codec::encode(&p).map_err(|source| StoreError::Codec {
        tree: "aux",
        source,
    })?;
    plan.state.push((NS_ACTIVATION, k, Some(value)));
    Ok(Some(PinCheck::Refused(Box::new(plan))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_pass_the_pin_format() {
        for _ in 0..200 {
            let c = random_code();
            assert_eq!(c.len(), 6);
            assert!(pin::check_format(&c).is_ok(), "{c}");
        }
    }
}
