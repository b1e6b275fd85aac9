//! REG / SAJILI: a new family with its head, an Idle new policy valued by the rules, the
//! head's coverage row, a payment intent with its control number, the reply, and (if the
//! family gave a phone for SMS) an SMS to the head. Without a product code, the officer's
//! product: that of their latest policy (while on sale), else `[officer] default_product`.

use super::parse::Register;
use super::plan::{uuid, HeadNotice, Plan, Rec};
use super::{
    allocate_chfid, auth, bad_field, chfid_taken, district_and_region, full_name, intent, Ctx,
    Field, OfficerError,
};
use crate::app::payments::PolicyLine;
use crate::domain::{
    is_on_sale, is_sellable_in, policy_period, policy_value, show_date, Family, Insuree, Location,
    LocationKind, MemberForValue, Policy, PolicyStage, PolicyStatus, Product, SmsPreference,
};
use crate::store::StoreError;

/// The rejection of a product not sold in `village` today (off sale, or sold elsewhere).
pub(super) fn not_sold(
    ctx: &Ctx<'_>,
    product: &Product,
    village: &Location,
) -> Result<Option<String>, OfficerError> {
    let (district, region) = district_and_region(ctx.store, village)?;
    let sellable = match (district, region) {
        (Some(d), Some(r)) => is_sellable_in(product, d, r),
        _ => product.location.is_none(),
    };
    if sellable && is_on_sale(product, ctx.today) {
        return Ok(None);
    }
    Ok(Some(ctx.grammar.text(
        "product_not_sold",
        ctx.lang,
        &[("product", &product.code), ("village", &village.name)],
    )))
}

pub fn run(ctx: &Ctx<'_>, r: &Register) -> Result<Plan, OfficerError> {
    let (g, lang, store) = (ctx.grammar, ctx.lang, ctx.store);
    let (village, product) = match where_and_what(ctx, r)? {
        Ok(x) => x,
        Err(reply) => return Ok(Plan::reject(reply)),
    };
    let chfid = match allocate_chfid(ctx, r.head.chfid)? {
        Ok(c) => c,
        Err(reply) => return Ok(Plan::reject(reply)),
    };
    let Ok(period) = policy_period(&product, ctx.today, PolicyStage::New) else {
        return Ok(Plan::reject(bad_field(ctx, Field::Product, &product.code)));
    };
    let value = policy_value(
        &product,
        &[MemberForValue {
            dob: r.head.dob,
            relationship: None,
        }],
        PolicyStage::New,
        ctx.today,
        period.start,
        None,
    );
    let family_id = store.next_id()?;
    let head = Insuree {
        id: store.next_id()?,
        uuid: uuid(),
        chfid,
        family: family_id,
        is_head: true,
        last_name: r.head.last_name.clone(),
        other_names: r.head.other_names.clone(),
        dob: r.head.dob,
        gender: r.head.gender,
        relationship: None,
        phone: r.phone.clone(),
        card_issued: false,
    };
    // A phone given at registration is the family's consent to SMS, in the officer's language.
    let family = Family {
        id: family_id,
        uuid: uuid(),
        head: head.id,
        village: village.id,
        poverty: false,
        sms: SmsPreference {
            approved: r.phone.is_some(),
            language: lang,
        },
    };
    let policy = Policy {
        id: store.next_id()?,
        uuid: uuid(),
        family: family_id,
        product: product.id,
        officer: Some(ctx.officer.id),
        stage: PolicyStage::New,
        status: PolicyStatus::Idle,
        value,
        enroll_date: ctx.today,
        start_date: period.start,
        effective_date: None,
        expiry_date: period.expiry,
        self_renewed: false,
    };
    let row = policy.member_row(store.next_id()?, head.id, ctx.today);
    let line = PolicyLine {
        chfid,
        policy: policy.id,
        stage: PolicyStage::New,
        amount: value,
    };
    let pay = intent::create(ctx, store.next_id()?, &product, line);
    let cn = intent::CN_MARK.to_string();
    let shown = chfid.to_string();
    let amount = value.to_string();
    let name = full_name(&head);
    let mut plan = Plan::composed(
        ctx,
        "registered",
        &[
            ("chfid", &shown),
            ("name", &name),
            ("village", &village.name),
            ("product", &product.code),
            ("amount", &amount),
            ("start", &show_date(period.start)),
            ("cn", &cn),
        ],
    );
    let text = g.text(
        "head_registered",
        family.sms.language,
        &[
            ("chfid", &shown),
            ("officer", &ctx.officer.code),
            ("amount", &amount),
            ("cn", &cn),
            ("product", &product.code),
        ],
    );
    let notice = HeadNotice {
        template: "head_registered",
        text,
        policy: policy.id,
    };
    plan.notify_head(&family, &head, notice);
    plan.index_officer_policy(ctx.officer.id, policy.id);
    plan.records.push(Rec::Insuree(head));
    plan.records.push(Rec::Family(family));
    plan.records.push(Rec::Policy(policy));
    plan.records.push(Rec::InsureePolicy(row));
    plan.intent = Some(pay);
    plan.fresh_chfids.push(chfid);
    plan.taken_reply = chfid_taken(ctx, chfid)?;
    Ok(plan)
}

/// The village the family lives in (the officer's to enrol in) and the product it takes
/// (sold there today), or the rejection.
fn where_and_what(
    ctx: &Ctx<'_>,
    r: &Register,
) -> Result<Result<(Location, Product), String>, OfficerError> {
    let (g, lang, store) = (ctx.grammar, ctx.lang, ctx.store);
    let Some(village) = store
        .location_by_code(&r.village)?
        .filter(|l| l.kind == LocationKind::Village)
    else {
        return Ok(Err(bad_field(ctx, Field::Village, &r.village)));
    };
    if !auth::may_enrol_in(ctx, village.id)? {
        let area = auth::area_codes(ctx)?;
        return Ok(Err(g.text(
            "village_not_yours",
            lang,
            &[("village", &village.code), ("area", &area)],
        )));
    }
    let product = match &r.product {
        Some(code) => match store.product_by_code(code)? {
            Some(p) => p,
            None => return Ok(Err(bad_field(ctx, Field::Product, code))),
        },
        None => match officers_product(ctx)? {
            Some(p) => p,
            None => return Ok(Err(g.text("no_product", lang, &[]))),
        },
    };
    if let Some(reply) = not_sold(ctx, &product, &village)? {
        return Ok(Err(reply));
    }
    Ok(Ok((village, product)))
}

/// The officer's product: that of their latest policy while it is on sale, else
/// `[officer] default_product`.
fn officers_product(ctx: &Ctx<'_>) -> Result<Option<Product>, StoreError> {
    if let Some(p) = super::pending::latest_policy_of(ctx.store, ctx.officer.id)? {
        if let Some(product) = ctx.store.product(p.product)? {
            if is_on_sale(&product, ctx.today) {
                return Ok(Some(product));
            }
        }
    }
    let code = ctx.settings.default_product.trim();
    if code.is_empty() {
        return Ok(None);
    }
    ctx.store.product_by_code(code)
}
