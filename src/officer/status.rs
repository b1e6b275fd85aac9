//! STATUS / HALI: a family's cover, as USSD shows it to members but with full names: per
//! product the latest expiry, then each member's status letter (A active, I inactive or
//! unpaid, E expired, S suspended, R ready).

use std::collections::BTreeMap;

use super::plan::Plan;
use super::{full_name, not_registered, show_chfid, show_date, Ctx, Field, OfficerError};
use crate::domain::{summarize, Chfid, Id, InsureePolicy, MemberPolicy, PolicyStatus};

pub fn run(ctx: &Ctx<'_>, chfid: Chfid) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let store = ctx.store;
    let shown = show_chfid(chfid);
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Plan::reject(not_registered(ctx, Field::Chfid, &shown)));
    };
    let name = full_name(&insuree);
    let members = store.family_members(insuree.family)?;
    let policies = store.family_policies(insuree.family)?;
    if policies.is_empty() {
        return Ok(Plan::answer(g.text(
            "status_none",
            ctx.lang,
            &[("chfid", &shown), ("name", &name)],
        )));
    }
    let mut rows: BTreeMap<Id, Vec<(Id, PolicyStatus, InsureePolicy)>> = BTreeMap::new();
    for p in &policies {
        for row in store.insuree_policies_of_policy(p.id)? {
            rows.entry(row.insuree)
                .or_default()
                .push((p.product, p.status, row));
        }
    }
    let mut products: BTreeMap<Id, (chrono::NaiveDate, Vec<String>)> = BTreeMap::new();
    for m in &members {
        let mine = rows.get(&m.id).map(Vec::as_slice).unwrap_or(&[]);
        let mp: Vec<MemberPolicy<'_>> = mine
            .iter()
            .map(|(product, status, row)| MemberPolicy {
                product: *product,
                status: *status,
                row,
            })
            .collect();
        for line in summarize(&mp, ctx.today) {
            let e = products
                .entry(line.product)
                .or_insert((line.expiry_date, Vec::new()));
            e.0 = e.0.max(line.expiry_date);
            e.1.push(format!("{} {}", full_name(m), line.letter.letter()));
        }
    }
    let mut parts = Vec::new();
    for (product, (expiry, lines)) in products {
        let code = store
            .product(product)?
            .map(|p| p.code)
            .unwrap_or_else(|| format!("#{product}"));
        parts.push(format!("{code} {} {}", show_date(expiry), lines.join(", ")));
    }
    Ok(Plan::answer(g.text(
        "status",
        ctx.lang,
        &[
            ("chfid", &shown),
            ("name", &name),
            ("coverage", &parts.join("; ")),
        ],
    )))
}
