//! Verify a patient (issue 21): the facility staff journey's one action. A caller whose
//! phone is not a registered staff phone gets `not_staff` (back to the member home) and
//! nothing about the patient: the member journeys and `[privacy]` answer them.

use super::{masked_name, ActionCtx, ActionError, Outcome};
use crate::domain::eligibility::Reason;
use crate::domain::{show_date, Chfid};
use crate::facility::registry;
use crate::facility::verify::{self, Channel, Record};

pub fn verify(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let Some(staff) = registry::staff_of(&ctx.store, &ctx.msisdn)? else {
        return Ok(Outcome::named("not_staff"));
    };
    let typed = ctx.var("chfid");
    let found = match Chfid::from_central(typed) {
        Ok(c) => verify::answer(&ctx.store, c, ctx.today)?,
        Err(_) => None,
    };
    let record = Record {
        hf: staff.hf,
        staff: ctx.msisdn.masked(),
        chfid: typed.to_string(),
        outcome: verify::outcome(found.as_ref()).to_string(),
        at_ms: ctx.now.timestamp_millis(),
        channel: Channel::Ussd,
    };
    verify::record(&ctx.store, &record)?;
    let Some(a) = found else {
        return Ok(Outcome::named("not_found"));
    };
    let gsm = super::super::gsm::to_gsm;
    let covered: Vec<String> = a.covered_members.iter().map(masked_name).collect();
    let covered = if covered.is_empty() {
        "-".to_string()
    } else {
        covered.join("\n")
    };
    // Covered is the action's `ok`; every other reason is an outcome of its own name.
    let name = match a.eligibility.reason {
        Reason::Covered => "ok",
        other => other.code(),
    };
    Ok(Outcome::named(name)
        .var("patient", gsm(&crate::facility::sms::full_name(&a.patient)))
        .var("sex", a.sex().to_string())
        .var("yob", a.year_of_birth().to_string())
        .var("village", gsm(&a.village))
        .var(
            "expiry",
            a.eligibility.expiry.map_or_else(|| "-".into(), show_date),
        )
        .var("covered", covered))
}
