//! Who may do what: the sender's officer record, `WorksTo`, the substitute chain, the
//! officer's villages, and the PIN with its lockout.
//!
//! Owns: aux namespace [`NS_PIN`] (officer id → failures in a row and lock expiry),
//! [`unlock`], the administrator's way out of a lockout, and [`set_pin`], the
//! administrator's way in for an officer who has no PIN (officers imported from openIMIS).
//! Must never: verify a PIN while the officer is locked (no guessing through a lockout), or
//! tell which part of a PIN was wrong.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, StateWrite};
use super::{Ctx, OfficerError};
use crate::domain::{effective_officer, pin, Id, Officer};
use crate::store::{codec, Store, StoreError};

pub const NS_PIN: &str = "officer.pin";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    /// Wrong PINs in a row.
    pub failures: u32,
    /// Locked until then (ms since the epoch).
    pub locked_until_ms: Option<i64>,
}

/// The outcome of a PIN check.
pub enum PinCheck {
    /// Right PIN; the state change to commit with the command (a reset, if there were
    /// failures).
    Ok(Vec<StateWrite>),
    /// Refused: the reply and the new failure count, nothing else.
    Refused(Box<Plan>),
}

/// `WorksTo` is the last working day.
pub fn is_working(officer: &Officer, today: NaiveDate) -> bool {
    officer.works_to.is_none_or(|last| today <= last)
}

pub fn pin_state(store: &Store, officer: Id) -> Result<PinState, StoreError> {
    Ok(store
        .aux_get(NS_PIN, &officer.to_be_bytes())?
        .and_then(|raw| codec::decode(&raw).ok())
        .unwrap_or_default())
}

fn encode(s: &PinState) -> Vec<u8> {
    codec::encode(s).unwrap_or_default()
}

fn show_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| {
            crate::domain::eat_datetime(t)
                .format("%d/%m/%Y %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// Checks `given` against the officer's PIN hash (Argon2; slow on purpose).
pub fn check_pin(ctx: &Ctx<'_>, given: &str) -> Result<PinCheck, OfficerError> {
    let g = ctx.grammar;
    let officer = ctx.officer;
    let key = officer.id.to_be_bytes().to_vec();
    let now_ms = ctx.now.timestamp_millis();
    let stored = pin_state(ctx.store, officer.id)?;
    let mut state = stored.clone();
    if let Some(until) = state.locked_until_ms {
        if now_ms < until {
            let reply = g.text("locked", ctx.lang, &[("until", &show_time(until))]);
            return Ok(PinCheck::Refused(Box::new(Plan::reject(reply))));
        }
        // The lockout ran out: a fresh start.
        state = PinState::default();
    }
    let Some(hash) = &officer.pin_hash else {
        let reply = g.text("no_pin", ctx.lang, &[("code", &officer.code)]);
        return Ok(PinCheck::Refused(Box::new(Plan::reject(reply))));
    };
    if pin::verify(given, hash) {
        let reset = if stored == PinState::default() {
            Vec::new()
        } else {
            vec![(NS_PIN, key, None)]
        };
        return Ok(PinCheck::Ok(reset));
    }
    state.failures += 1;
    let max = ctx.settings.max_pin_failures.max(1);
    let reply = if state.failures >= max {
        let minutes = i64::try_from(ctx.settings.lockout_minutes).unwrap_or(i64::MAX / 60_000);
        let until = now_ms.saturating_add(minutes.saturating_mul(60_000));
        state.locked_until_ms = Some(until);
        tracing::warn!(officer = %officer.code, failures = state.failures, "officer locked out");
        g.text("locked", ctx.lang, &[("until", &show_time(until))])
    } else {
        let left = (max - state.failures).to_string();
        g.text("wrong_pin", ctx.lang, &[("left", &left)])
    };
    let mut plan = Plan::reject(reply);
    plan.state.push((NS_PIN, key, Some(encode(&state))));
    Ok(PinCheck::Refused(Box::new(plan)))
}

/// Lifts a lockout (an administrator's action). Returns whether the officer had failures.
pub fn unlock(store: &Store, officer_code: &str) -> Result<Option<bool>, StoreError> {
    let Some(officer) = store.officer_by_code(officer_code)? else {
        return Ok(None);
    };
    let had = store.aux_remove(NS_PIN, &officer.id.to_be_bytes())?;
    store.flush()?;
    tracing::info!(officer = %officer.code, "officer PIN lockout lifted by an administrator");
    Ok(Some(had))
}

/// An administrator sets officer `officer_code`'s PIN (stored only as an Argon2 hash) and
/// lifts any lockout, in one durable write. `Ok(None)`: no such officer.
pub fn set_pin(
    store: &Store,
    officer_code: &str,
    new_pin: &str,
) -> Result<Option<()>, OfficerError> {
    let Some(mut officer) = store.officer_by_code(officer_code)? else {
        return Ok(None);
    };
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    officer.pin_hash = Some(pin::hash(new_pin, salt)?);
    store
        .write(|tx| -> crate::store::TxResult<()> {
            tx.put_officer(&officer)?;
            tx.aux_remove(NS_PIN, &officer.id.to_be_bytes())?;
            Ok(())
        })
        .map_err(StoreError::from)?;
    store.flush()?;
    tracing::info!(officer = %officer.code, "officer PIN set by an administrator");
    Ok(Some(()))
}

/// The villages this officer may enrol in on `today`: their own, and those of officers who
/// stopped working and whose substitute chain ends at them.
pub fn villages(ctx: &Ctx<'_>) -> Result<Vec<Id>, StoreError> {
    let mut out = ctx.officer.villages.clone();
    for other in substituted(ctx)? {
        for v in other.villages {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Officers whose work falls to this officer today (scans the officers: only on the paths
/// that need it).
pub fn substituted(ctx: &Ctx<'_>) -> Result<Vec<Officer>, StoreError> {
    let all = ctx.store.officers()?;
    let me = ctx.officer.id;
    let mut out = Vec::new();
    for o in &all {
        if o.id == me || is_working(o, ctx.today) {
            continue;
        }
        let chosen = effective_officer(|id| all.iter().find(|x| x.id == id), o.id, ctx.today);
        if chosen.map(|c| c.id) == Some(me) {
            out.push(o.clone());
        }
    }
    Ok(out)
}

/// Whether the officer may enrol in `village` (own area first, substitutes only if needed).
pub fn may_enrol_in(ctx: &Ctx<'_>, village: Id) -> Result<bool, StoreError> {
    if ctx.officer.villages.contains(&village) {
        return Ok(true);
    }
    Ok(villages(ctx)?.contains(&village))
}

/// The officer's area as a short list of village codes, for an error reply.
pub fn area_codes(ctx: &Ctx<'_>) -> Result<String, StoreError> {
    let mut codes = Vec::new();
    for v in villages(ctx)?.into_iter().take(8) {
        if let Some(l) = ctx.store.location(v)? {
            codes.push(l.code);
        }
    }
    if codes.is_empty() {
        return Ok("-".into());
    }
    Ok(codes.join(" "))
}
