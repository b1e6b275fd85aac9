//! Who may do what: the sender's officer record, `WorksTo`, the substitute chain, the
//! officer's villages, and the PIN with its lockout.
//!
//! Owns: aux namespaces [`NS_PIN`] (officer id → failures in a row and lock expiry) and
//! [`NS_STREAK`] (officer id → lockouts in a row, the back-off), the lockout rule
//! ([`lockout_minutes`]) and the SMS that tells the officer ([`LOCKED_TEMPLATE`]),
//! [`unlock`], the administrator's way out of a lockout, and [`set_pin`], the
//! administrator's way in for an officer who has no PIN (officers imported from openIMIS).
//! Must never: verify a PIN while the officer is locked (no guessing through a lockout),
//! tell which part of a PIN was wrong, or lock an officer out without telling their phone.
//!
//! Why a back-off: a flat lockout lets a guesser try `max_pin_failures` PINs per lockout,
//! every lockout, forever (~240 a day at 5 per 30 min). Each lockout in a row lasts twice
//! the one before, from `[officer] lockout_minutes` up to [`MAX_LOCKOUT_MINUTES`] (30 min,
//! 1 h, 2 h, 4 h, 8 h, 16 h, then 24 h: 35 guesses the first day, 5 a day after). A right PIN
//! or an administrator's [`unlock`] ends the streak.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, StateWrite};
use super::{Ctx, OfficerError};
use crate::domain::{effective_officer, pin, Id, Officer};
use crate::store::{codec, Store, StoreError};

pub const NS_PIN: &str = "officer.pin";
pub const NS_STREAK: &str = "officer.pin.streak";
/// The SMS (`sms-templates/<lang>/officer_locked.txt`) an officer's phone gets when a wrong
/// PIN locks the account (the reply to that command): if it was not the officer, they call
/// the office at once.
pub const LOCKED_TEMPLATE: &str = "officer_locked";
/// The longest lockout, however long the streak: one day.
pub const MAX_LOCKOUT_MINUTES: u64 = 24 * 60;

/// Minutes the `streak`-th lockout in a row lasts (1 is the first): `base` doubled per
/// lockout before it, at most [`MAX_LOCKOUT_MINUTES`] (and never less than `base`).
pub fn lockout_minutes(base: u64, streak: u32) -> u64 {
    let doublings = streak.saturating_sub(1).min(32);
    let grown = base.saturating_mul(1u64 << doublings);
    grown.min(MAX_LOCKOUT_MINUTES.max(base))
}

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

/// Lockouts in a row (since the last right PIN or administrator's unlock).
pub fn streak(store: &Store, officer: Id) -> Result<u32, StoreError> {
    Ok(store
        .aux_get(NS_STREAK, &officer.to_be_bytes())?
        .and_then(|raw| codec::decode(&raw).ok())
        .unwrap_or(0))
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

/// Checks the PIN the command carried (`given`: in clear, or checked before the MO was
/// stored) against the officer's PIN hash.
pub fn check_pin(ctx: &Ctx<'_>, given: &Proof<'_>) -> Result<PinCheck, OfficerError> {
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
    if given.pin_matches(hash) {
        let mut reset = Vec::new();
        if stored != PinState::default() {
            reset.push((NS_PIN, key.clone(), None));
        }
        if streak(ctx.store, officer.id)? > 0 {
            reset.push((NS_STREAK, key, None));
        }
        return Ok(PinCheck::Ok(reset));
    }
    state.failures += 1;
    let max = ctx.settings.max_pin_failures.max(1);
    if state.failures < max {
        let left = (max - state.failures).to_string();
        let mut plan = Plan::reject(g.text("wrong_pin", ctx.lang, &[("left", &left)]));
        plan.state.push((NS_PIN, key, Some(encode(&state))));
        return Ok(PinCheck::Refused(Box::new(plan)));
    }
    let lockouts = streak(ctx.store, officer.id)?.saturating_add(1);
    let minutes = lockout_minutes(ctx.settings.lockout_minutes, lockouts);
    let until =
        now_ms.saturating_add(i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX));
    state.locked_until_ms = Some(until);
    tracing::warn!(
        officer = %officer.code,
        failures = state.failures,
        lockouts,
        minutes,
        "officer locked out"
    );
    let shown = show_time(until);
    let reply = locked_notice(ctx, state.failures, &shown)
        .unwrap_or_else(|| g.text("locked", ctx.lang, &[("until", &shown)]));
    let mut plan = Plan::reject(reply);
    plan.state.push((NS_PIN, key.clone(), Some(encode(&state))));
    plan.state
        .push((NS_STREAK, key, codec::encode(&lockouts).ok()));
    Ok(PinCheck::Refused(Box::new(plan)))
}

/// The [`LOCKED_TEMPLATE`] SMS: the reply to the wrong PIN that locks the account, which
/// goes to the officer's own phone (the command came from it): it says until when, and to
/// call the office if it was not them. `None` without the template (the grammar's shorter
/// `locked` text is sent instead).
fn locked_notice(ctx: &Ctx<'_>, failures: u32, until: &str) -> Option<String> {
    let vars = std::collections::HashMap::from([
        ("officer", ctx.officer.code.clone()),
        ("failures", failures.to_string()),
        ("until", until.to_string()),
    ]);
    let text = ctx
        .templates
        .and_then(|t| t.render(LOCKED_TEMPLATE, ctx.lang, &vars).ok());
    if text.is_none() {
        tracing::warn!("no {LOCKED_TEMPLATE} SMS template: the lockout reply is the short one");
    }
    text
}

/// The PIN a command carried, as the worker sees it.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// In clear (an MO stored without screening: tests that drive the worker directly).
    Clear(&'a str),
    /// Checked before the MO was stored; its text holds `****` instead.
    Checked(&'a super::screen::Verified),
}

impl Proof<'_> {
    /// Whether the PIN matches the officer's PIN hash `hash`.
    pub fn pin_matches(&self, hash: &str) -> bool {
        match self {
            Proof::Clear(p) => pin::verify(p, hash),
            Proof::Checked(v) => v.pin_ok,
        }
    }

    /// Whether the PIN word matches the activation code hash `hash`.
    pub fn code_matches(&self, hash: &str) -> bool {
        match self {
            Proof::Clear(p) => pin::verify(p, hash),
            Proof::Checked(v) => v.code_ok == Some(true),
        }
    }
}

/// Lifts a lockout (an administrator's action). Returns whether the officer had failures.
pub fn unlock(store: &Store, officer_code: &str) -> Result<Option<bool>, StoreError> {
    let Some(officer) = store.officer_by_code(officer_code)? else {
        return Ok(None);
    };
    let key = officer.id.to_be_bytes();
    let had = store.aux_remove(NS_PIN, &key)?;
    // The back-off starts over too: the administrator has judged the lockout.
    store.aux_remove(NS_STREAK, &key)?;
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
            tx.aux_remove(NS_STREAK, &officer.id.to_be_bytes())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lockout_in_a_row_lasts_twice_the_last_up_to_a_day() {
        let mins: Vec<u64> = (1..=8).map(|n| lockout_minutes(30, n)).collect();
        assert_eq!(mins, [30, 60, 120, 240, 480, 960, 1440, 1440]);
        // A streak of 0 (never stored) is the first lockout; a huge one stays capped.
        assert_eq!(lockout_minutes(30, 0), 30);
        assert_eq!(lockout_minutes(30, u32::MAX), MAX_LOCKOUT_MINUTES);
        // A base over the cap is the operator's choice: kept, never grown.
        assert_eq!(lockout_minutes(2000, 3), 2000);
        assert_eq!(lockout_minutes(u64::MAX, 5), u64::MAX);
    }
}
