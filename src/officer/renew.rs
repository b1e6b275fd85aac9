//! RENEW / HUISHA: an Idle renewal ('R') of the family's product (its conversion product
//! when it is off sale, or the product the officer names), dated and valued by the rules,
//! with every member's coverage row and a payment intent; the reply gives the amount and
//! the control number. A renewal already waiting for payment is shown instead.

use std::collections::HashMap;

use crate::domain::show_date;
use super::pending::officer_policy_key;
use super::plan::{uuid, Plan, Rec};
use super::{
    auth, bad_field, district_and_region, intent, not_registered, Ctx,
    Field, OfficerError,
};
use crate::domain::{
    is_on_sale, is_sellable_in, policy_value, renewal_period, renewal_product, Chfid, Id,
    InsureePolicy, MemberForValue, Policy, PolicyStage, PolicyStatus, Product,
};
use crate::sms::OutboundSms;
use crate::ussd::actions::payments::of_family;

pub fn run(ctx: &Ctx<'_>, chfid: Chfid, wanted: Option<&str>) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let lang = ctx.lang;
    let store = ctx.store;
    let shown = chfid.to_string();
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Plan::reject(not_registered(ctx, Field::Chfid, &shown)));
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
    let head = store.insuree(family.head)?.unwrap_or(insuree);
    let head_chfid = head.chfid.to_string();
    let members = store.family_members(family.id)?;
    let policies = store.family_policies(family.id)?;
    let products: HashMap<Id, Product> = store.products()?.into_iter().map(|p| (p.id, p)).collect();
    let not_renewable = || Plan::reject(g.text("not_renewable", lang, &[("chfid", &head_chfid)]));
    // The policy being renewed: the latest paid-for (non-Idle) one, of the named product if
    // the family had it.
    let paid: Vec<&Policy> = policies
        .iter()
        .filter(|p| p.status != PolicyStatus::Idle)
        .collect();
    let latest = |product: Option<Id>| {
        paid.iter()
            .filter(|p| product.is_none_or(|id| p.product == id))
            .max_by_key(|p| p.expiry_date)
            .copied()
    };
    let (target, previous) = match wanted {
        Some(code) => {
            let Some(target) = products
                .values()
                .find(|p| p.code.eq_ignore_ascii_case(code))
            else {
                return Ok(Plan::reject(bad_field(ctx, Field::Product, code)));
            };
            let (district, region) = district_and_region(store, &village)?;
            let sellable = match (district, region) {
                (Some(d), Some(r)) => is_sellable_in(target, d, r),
                _ => target.location.is_none(),
            };
            if !sellable || !is_on_sale(target, ctx.today) {
                return Ok(Plan::reject(g.text(
                    "product_not_sold",
                    lang,
                    &[("product", &target.code), ("village", &village.name)],
                )));
            }
            let Some(previous) = latest(Some(target.id)).or_else(|| latest(None)) else {
                return Ok(not_renewable());
            };
            (target, previous)
        }
        None => {
            let Some(previous) = latest(None) else {
                return Ok(not_renewable());
            };
            let Some(product) = products.get(&previous.product) else {
                return Ok(not_renewable());
            };
            let Ok(target) = renewal_product(|id| products.get(&id), product, ctx.today) else {
                return Ok(not_renewable());
            };
            (target, previous)
        }
    };
    // Already renewed and waiting for payment: say so, create nothing.
    if let Some(existing) = policies.iter().find(|p| {
        p.product == target.id
            && p.status == PolicyStatus::Idle
            && p.stage == PolicyStage::Renewal
            && p.start_date > previous.expiry_date
    }) {
        let cn = of_family(store, family.id)?
            .into_iter()
            .find(|pay| pay.details.iter().any(|d| d.policy == Some(existing.id)))
            .and_then(|pay| pay.control_number);
        let reply = g.text(
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
    let Ok(period) = renewal_period(target, ctx.today, previous.expiry_date) else {
        return Ok(not_renewable());
    };
    let for_value: Vec<MemberForValue> = members
        .iter()
        .map(|m| MemberForValue {
            dob: m.dob,
            relationship: m.relationship,
        })
        .collect();
    let value = policy_value(
        target,
        &for_value,
        PolicyStage::Renewal,
        ctx.today,
        period.start,
        Some(previous.expiry_date),
    );
    let policy = Policy {
        id: store.next_id()?,
        uuid: uuid(),
        family: family.id,
        product: target.id,
        officer: Some(ctx.officer.id),
        stage: PolicyStage::Renewal,
        status: PolicyStatus::Idle,
        value,
        enroll_date: ctx.today,
        start_date: period.start,
        effective_date: None,
        expiry_date: period.expiry,
        self_renewed: false,
    };
    let mut plan = Plan::answer(String::new());
    for m in &members {
        plan.records.push(Rec::InsureePolicy(InsureePolicy {
            id: store.next_id()?,
            insuree: m.id,
            policy: policy.id,
            enrollment_date: ctx.today,
            start_date: period.start,
            effective_date: None,
            expiry_date: period.expiry,
        }));
    }
    let pay = intent::create(
        ctx,
        store.next_id()?,
        head.chfid,
        target,
        policy.id,
        PolicyStage::Renewal,
        value,
    );
    let cn = intent::CN_MARK.to_string();
    let amount = value.to_string();
    plan.reply = g.text(
        "renewed",
        lang,
        &[
            ("chfid", &head_chfid),
            ("product", &target.code),
            ("amount", &amount),
            ("cn", &cn),
            ("start", &show_date(period.start)),
        ],
    );
    if let (true, Some(phone)) = (family.sms.approved, &head.phone) {
        let text = g.text(
            "head_renewed",
            family.sms.language,
            &[
                ("chfid", &head_chfid),
                ("product", &target.code),
                ("amount", &amount),
                ("cn", &cn),
            ],
        );
        plan.notices.push((
            "head".into(),
            OutboundSms {
                to: phone.clone(),
                text,
                template: "officer.head_renewed".into(),
                language: family.sms.language,
                reference: format!("policy:{}", policy.id),
            },
        ));
    }
    plan.indexes.push((
        super::pending::NS_OFFICER_POLICIES,
        officer_policy_key(ctx.officer.id, policy.id),
        Vec::new(),
    ));
    plan.payment_index.push((family.id, pay.payment.id));
    plan.records.insert(0, Rec::Policy(policy));
    plan.intent = Some(pay);
    Ok(plan)
}
