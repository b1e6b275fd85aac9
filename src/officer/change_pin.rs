//! PIN: the officer changes their PIN (old PIN checked like any writing command). The new
//! PIN is stored only as an Argon2 hash, on the officer record.

use rand::RngCore;

use super::plan::{Plan, Rec};
use super::{Ctx, OfficerError};
use crate::domain::pin;

pub fn run(ctx: &Ctx<'_>, new: &str, repeat: &str) -> Result<Plan, OfficerError> {
    if new != repeat {
        return Ok(Plan::reject(ctx.grammar.text(
            "pin_mismatch",
            ctx.lang,
            &[],
        )));
    }
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let hash = pin::hash(new, salt)?;
    let mut officer = ctx.officer.clone();
    officer.pin_hash = Some(hash);
    let mut plan = Plan::answer(ctx.grammar.text("pin_changed", ctx.lang, &[]));
    plan.records.push(Rec::Officer(officer));
    Ok(plan)
}
