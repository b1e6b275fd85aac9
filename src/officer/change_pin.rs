//! PIN: the officer changes their PIN (old PIN checked like any writing command). The new
//! PIN is stored only as an Argon2 hash, on the officer record.

use rand::RngCore;

use super::plan::{Plan, Rec};
use super::{Ctx, OfficerError};
use crate::domain::pin::{self, PinError};

/// The new PIN's Argon2 hash with a fresh salt.
pub fn hash_new(new: &str) -> Result<String, PinError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    pin::hash(new, salt)
}

/// `matches`: the two new PINs were the same; `hash`: the new PIN's hash (asked only then).
pub fn run(
    ctx: &Ctx<'_>,
    matches: bool,
    hash: impl FnOnce() -> Result<String, PinError>,
) -> Result<Plan, OfficerError> {
    if !matches {
        return Ok(Plan::reject(ctx.grammar.text(
            "pin_mismatch",
            ctx.lang,
            &[],
        )));
    }
    let hash = hash()?;
    let mut officer = ctx.officer.clone();
    officer.pin_hash = Some(hash);
    let mut plan = Plan::answer(ctx.grammar.text("pin_changed", ctx.lang, &[]));
    plan.records.push(Rec::Officer(officer));
    Ok(plan)
}
