//! Check coverage: a family's products, expiry and per-member status letter; and the
//! families whose head has the caller's phone.

use std::collections::BTreeMap;

use super::{masked_name, show_date, ActionCtx, ActionError, Outcome};
use crate::domain::{summarize, Chfid, Id, InsureePolicy, MemberPolicy};

pub fn coverage(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let Ok(chfid) = Chfid::parse(ctx.var("chfid")) else {
        return Ok(Outcome::named("not_found"));
    };
    let store = &ctx.store;
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Outcome::named("not_found"));
    };
    let members = store.family_members(insuree.family)?;
    let policies = store.family_policies(insuree.family)?;
    if policies.is_empty() {
        return Ok(Outcome::named("no_policy").var("name", masked_name(&insuree)));
    }
    let mut rows_by_member: BTreeMap<Id, Vec<(Id, crate::domain::PolicyStatus, InsureePolicy)>> =
        BTreeMap::new();
    for p in &policies {
        for row in store.insuree_policies_of_policy(p.id)? {
            rows_by_member
                .entry(row.insuree)
                .or_default()
                .push((p.product, p.status, row));
        }
    }
    // Per product: the latest expiry any member is covered to, and each member's letter.
    let mut products: BTreeMap<Id, (chrono::NaiveDate, Vec<String>)> = BTreeMap::new();
    for m in &members {
        let rows = rows_by_member.get(&m.id).map(Vec::as_slice).unwrap_or(&[]);
        let mp: Vec<MemberPolicy<'_>> = rows
            .iter()
            .map(|(product, status, row)| MemberPolicy {
                product: *product,
                status: *status,
                row,
            })
            .collect();
        for line in summarize(&mp, ctx.today) {
            let entry = products
                .entry(line.product)
                .or_insert((line.expiry_date, Vec::new()));
            entry.0 = entry.0.max(line.expiry_date);
            entry
                .1
                .push(format!("{} {}", masked_name(m), line.letter.letter()));
        }
    }
    let mut text = Vec::new();
    for (product_id, (expiry, lines)) in products {
        let code = store
            .product(product_id)?
            .map(|p| p.code)
            .unwrap_or_else(|| format!("#{product_id}"));
        text.push(format!("{code} {}", show_date(expiry)));
        text.extend(lines);
    }
    Ok(Outcome::named("ok")
        .var("name", masked_name(&insuree))
        .var("coverage", text.join("\n")))
}

/// The families whose head has the caller's phone, as a list to pick a CHFID from.
pub fn families(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let mut items = Vec::new();
    for f in ctx.store.families_by_phone(&ctx.msisdn)? {
        if let Some(head) = ctx.store.insuree(f.head)? {
            let chfid = format!("{:09}", head.chfid.value());
            items.push((format!("{} {chfid}", masked_name(&head)), chfid));
        }
    }
    if items.is_empty() {
        return Ok(Outcome::named("none"));
    }
    let mut out = Outcome::named("ok");
    out.lists.insert("families".into(), items);
    Ok(out)
}
