//! ADD / ONGEZA: a member joins a family. The family's current policies (latest per product,
//! not expired or suspended) are re-valued by the rules with the new member; each gets the
//! member's coverage row. An unpaid (Idle) policy's pending payment is re-priced; a paid one
//! covers the member at once only if the value did not grow (within the lump-sum
//! threshold), otherwise the member waits for the difference, as `uspAddInsureePolicy` does.

use std::collections::BTreeMap;

use super::parse::AddMember;
use super::plan::{uuid, Plan, Rec};
use super::{
    allocate_chfid, auth, chfid_taken, full_name, not_registered, unknown_chfid, Ctx, Field,
    OfficerError,
};
use crate::app::payments::repriced_for_policy;
use crate::domain::{policy_value, Id, Insuree, MemberForValue, Money, Policy, PolicyStatus};

pub fn run(ctx: &Ctx<'_>, a: &AddMember) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let lang = ctx.lang;
    let store = ctx.store;
    let shown_family = a.family.to_string();
    let Some(named) = store.insuree_by_chfid(a.family)? else {
        return Ok(Plan::reject(unknown_chfid(
            ctx,
            Field::FamilyChfid,
            a.family,
        )));
    };
    let Some(family) = store.family(named.family)? else {
        return Ok(Plan::reject(not_registered(
            ctx,
            Field::FamilyChfid,
            &shown_family,
        )));
    };
    if !auth::may_enrol_in(ctx, family.village)? {
        let village = store
            .location(family.village)?
            .map(|l| l.name)
            .unwrap_or_default();
        return Ok(Plan::reject(g.text(
            "family_not_yours",
            lang,
            &[("chfid", &shown_family), ("village", &village)],
        )));
    }
    let chfid = match allocate_chfid(ctx, a.member.chfid)? {
        Ok(c) => c,
        Err(reply) => return Ok(Plan::reject(reply)),
    };
    let members = store.family_members(family.id)?;
    let head_chfid = store
        .insuree(family.head)?
        .map(|h| h.chfid.to_string())
        .unwrap_or(shown_family);
    let member = Insuree {
        id: store.next_id()?,
        uuid: uuid(),
        chfid,
        family: family.id,
        is_head: false,
        last_name: a.member.last_name.clone(),
        other_names: a.member.other_names.clone(),
        dob: a.member.dob,
        gender: a.member.gender,
        relationship: Some(a.relationship),
        phone: None,
        card_issued: false,
    };
    let mut for_value: Vec<MemberForValue> = members.iter().map(Insuree::for_value).collect();
    for_value.push(member.for_value());
    let policies = store.family_policies(family.id)?;
    // The current policy per product: the latest that is neither expired nor suspended.
    let mut current: BTreeMap<Id, &Policy> = BTreeMap::new();
    for p in policies.iter().filter(|p| {
        matches!(
            p.status,
            PolicyStatus::Idle | PolicyStatus::Active | PolicyStatus::Ready
        ) && p.expiry_date >= ctx.today
    }) {
        let e = current.entry(p.product).or_insert(p);
        if p.start_date > e.start_date {
            *e = p;
        }
    }
    let name = full_name(&member);
    let members_now = (members.len() + 1).to_string();
    let mut plan = Plan::answer(String::new());
    let joined = Joining {
        member: &member,
        name: &name,
        for_value: &for_value,
        policies: &policies,
    };
    let summary = joined.cover(ctx, &mut plan, current.values().copied())?;
    plan.reply = match summary {
        Some((product, amount, extra)) => g.compose(
            "added",
            lang,
            &[
                ("chfid", &chfid.to_string()),
                ("name", &name),
                ("family", &head_chfid),
                ("members", &members_now),
                ("product", &product),
                ("amount", &amount.to_string()),
                ("extra", &extra),
            ],
        ),
        None => g.compose(
            "added_no_policy",
            lang,
            &[
                ("chfid", &chfid.to_string()),
                ("name", &name),
                ("family", &head_chfid),
                ("members", &members_now),
            ],
        ),
    };
    plan.records.insert(0, Rec::Insuree(member));
    plan.fresh_chfids.push(chfid);
    plan.taken_reply = chfid_taken(ctx, chfid)?;
    Ok(plan)
}

/// The new member and what re-valuing the family's policies with them needs.
struct Joining<'a> {
    member: &'a Insuree,
    name: &'a str,
    for_value: &'a [MemberForValue],
    policies: &'a [Policy],
}

impl Joining<'_> {
    /// Gives the member a row under each current policy, re-valued (and its waiting payment
    /// re-priced); returns what the reply names: the Idle policy's product if any, else the
    /// first's, with its new value and the extra sentence (control number, or the amount due).
    fn cover<'p>(
        &self,
        ctx: &Ctx<'_>,
        plan: &mut Plan,
        current: impl Iterator<Item = &'p Policy>,
    ) -> Result<Option<(String, Money, String)>, OfficerError> {
        let (g, lang, store) = (ctx.grammar, ctx.lang, ctx.store);
        let mut summary: Option<(String, Money, String)> = None;
        for p in current {
            let Some(product) = store.product(p.product)? else {
                continue;
            };
            let previous_expiry = self
                .policies
                .iter()
                .filter(|o| o.product == p.product && o.id != p.id && o.expiry_date < p.start_date)
                .map(|o| o.expiry_date)
                .max();
            let value = policy_value(
                &product,
                self.for_value,
                p.stage,
                p.enroll_date,
                p.start_date,
                previous_expiry,
            );
            let covered_now = p.status != PolicyStatus::Idle && value <= p.value;
            let mut row = p.member_row(store.next_id()?, self.member.id, ctx.today);
            if !covered_now {
                row.effective_date = None;
            }
            plan.records.push(Rec::InsureePolicy(row));
            let mut extra = String::new();
            if value != p.value {
                let mut updated = p.clone();
                updated.value = value;
                plan.records.push(Rec::Policy(updated));
            }
            if p.status == PolicyStatus::Idle {
                // Re-price the payment waiting for this policy.
                for pay in repriced_for_policy(store, p.family, p.id, value)? {
                    if let Some(cn) = &pay.control_number {
                        extra = g.text("added_cn", lang, &[("cn", cn)]);
                    }
                    plan.records.push(Rec::Payment(pay));
                }
            } else if !covered_now {
                let due = (value - p.value).to_string();
                // The name here is part of an essential sentence: short from the start.
                let name = super::compose::cut(&super::compose::initials(self.name), 20);
                extra = g.text("added_due", lang, &[("due", &due), ("name", &name)]);
            }
            // The Idle (unpaid) policy is the one the officer needs to hear about first.
            if summary.is_none() || p.status == PolicyStatus::Idle {
                summary = Some((product.code.clone(), value, extra));
            }
        }
        Ok(summary)
    }
}
