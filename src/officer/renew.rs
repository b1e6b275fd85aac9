//! RENEW / HUISHA: an Idle renewal ('R') of the family's product (its conversion product
//! when it is off sale, or the product the officer names), dated and valued by the rules,
//! with every member's coverage row and a payment intent; the reply gives the amount and
//! the control number. A renewal already waiting for payment is shown instead.
//!
//! The renewal is [`crate::app::renewal`]'s (the one USSD uses); this module adds what is
//! the officer's: the area check, the product the officer may name, the replies.

use super::plan::{HeadNotice, Plan, Rec};
use super::register::not_sold;
use super::{auth, bad_field, intent, not_registered, unknown_chfid, Ctx, Field, OfficerError};
use crate::app::payments::control_number_of_policy;
use crate::app::renewal::{FamilyFile, Renewer};
use crate::domain::{show_date, Chfid, Location, Policy, Product};

pub fn run(ctx: &Ctx<'_>, chfid: Chfid, wanted: Option<&str>) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let lang = ctx.lang;
    let store = ctx.store;
    let shown = chfid.to_string();
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Plan::reject(unknown_chfid(ctx, Field::Chfid, chfid)));
    };
    let Some(family) = store.family(insuree.family)? else {
        return Ok(Plan::reject(not_registered(ctx, Field::Chfid, &shown)));
    };
    let Some(village) = store.location(family.village)? else {
        return Ok(Plan::reject(not_registered(ctx, Field::Chfid, &shown)));
    };
    if !auth::may_enrol_in(ctx, family.village)? {
        return Ok(Plan::reject(g.text(
            "family_not_yours",
            lang,
            &[("chfid", &shown), ("village", &village.name)],
        )));
    }
    let file = FamilyFile::load(store, family, insuree)?;
    let head_chfid = file.head.chfid.to_string();
    let not_renewable = || Plan::reject(g.text("not_renewable", lang, &[("chfid", &head_chfid)]));
    let (target, previous) = match choose(ctx, &file, &village, wanted)? {
        Choice::Renew(target, previous) => (target, previous),
        Choice::Reject(reply) => return Ok(Plan::reject(reply)),
        Choice::NotRenewable => return Ok(not_renewable()),
    };
    // Already renewed and waiting for payment: say so, create nothing.
    if let Some(existing) = file.waiting(target.id, Some(previous.expiry_date)) {
        let cn = control_number_of_policy(store, file.family.id, existing.id)?;
        let reply = g.compose(
            "renew_waiting",
            lang,
            &[
                ("chfid", &head_chfid),
                ("product", &target.code),
                ("amount", &existing.value.to_string()),
                ("cn", &intent::show(ctx, &cn)),
            ],
        );
        return Ok(Plan::answer(reply));
    }
    let Some(q) = file.quote(target, previous, ctx.today, Some(previous.expiry_date)) else {
        return Ok(not_renewable());
    };
    let by = Renewer {
        officer: Some(ctx.officer.id),
        self_renewed: false,
        payer: intent::payer(ctx),
    };
    let renewal = file.renewal(&q, &by, (ctx.today, ctx.now), || store.next_id())?;
    let cn = intent::CN_MARK;
    let amount = q.value.to_string();
    let mut plan = Plan::composed(
        ctx,
        "renewed",
        &[
            ("chfid", &head_chfid),
            ("product", &target.code),
            ("amount", &amount),
            ("cn", cn),
            ("start", &show_date(q.start)),
        ],
    );
    let text = g.text(
        "head_renewed",
        file.family.sms.language,
        &[
            ("chfid", &head_chfid),
            ("product", &target.code),
            ("amount", &amount),
            ("cn", cn),
        ],
    );
    let policy = renewal.policy.id;
    let notice = HeadNotice {
        template: "head_renewed",
        text,
        policy,
    };
    plan.notify_head(&file.family, &file.head, notice);
    plan.index_officer_policy(ctx.officer.id, policy);
    plan.records.push(Rec::Policy(renewal.policy));
    plan.records
        .extend(renewal.rows.into_iter().map(Rec::InsureePolicy));
    plan.intent = Some(intent::Intent {
        payment: renewal.payment,
        product: q.product,
    });
    Ok(plan)
}

/// What RENEW renews: the target product and the policy renewed, or why not.
enum Choice<'f> {
    Renew(&'f Product, &'f Policy),
    Reject(String),
    NotRenewable,
}

/// The policy being renewed is the latest paid-for (non-Idle) one, of the named product if
/// the family had it; the target is the named product (if sold in the village) or the
/// renewal product of that policy's.
fn choose<'f>(
    ctx: &Ctx<'_>,
    file: &'f FamilyFile,
    village: &Location,
    wanted: Option<&str>,
) -> Result<Choice<'f>, OfficerError> {
    let Some(code) = wanted else {
        let Some(previous) = file.latest_paid(None) else {
            return Ok(Choice::NotRenewable);
        };
        return Ok(match file.renewal_target(previous, ctx.today) {
            Some(target) => Choice::Renew(target, previous),
            None => Choice::NotRenewable,
        });
    };
    let Some(target) = file
        .products
        .values()
        .find(|p| p.code.eq_ignore_ascii_case(code))
    else {
        return Ok(Choice::Reject(bad_field(ctx, Field::Product, code)));
    };
    if let Some(reply) = not_sold(ctx, target, village)? {
        return Ok(Choice::Reject(reply));
    }
    match file
        .latest_paid(Some(target.id))
        .or_else(|| file.latest_paid(None))
    {
        Some(previous) => Ok(Choice::Renew(target, previous)),
        None => Ok(Choice::NotRenewable),
    }
}
