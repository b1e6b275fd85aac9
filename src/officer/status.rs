//! STATUS / HALI: a family's cover, as USSD shows it to members but with full names: per
//! product the latest expiry, then each member's status letter (A active, I inactive or
//! unpaid, E expired, S suspended, R ready).

use super::plan::Plan;
use super::{full_name, unknown_chfid, Ctx, Field, OfficerError};
use crate::domain::show_date;
use crate::domain::Chfid;

pub fn run(ctx: &Ctx<'_>, chfid: Chfid) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let store = ctx.store;
    let shown = chfid.to_string();
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Plan::reject(unknown_chfid(ctx, Field::Chfid, chfid)));
    };
    let name = full_name(&insuree);
    let Some(cover) = crate::app::inquiry::family_cover(store, insuree.family, ctx.today)? else {
        return Ok(Plan::answer(g.text(
            "status_none",
            ctx.lang,
            &[("chfid", &shown), ("name", &name)],
        )));
    };
    let parts: Vec<String> = cover
        .iter()
        .map(|product| {
            let lines: Vec<String> = product
                .members
                .iter()
                .map(|(m, letter)| format!("{} {}", full_name(m), letter.letter()))
                .collect();
            format!(
                "{} {} {}",
                product.code,
                product.expiry.map_or_else(|| "-".to_string(), show_date),
                lines.join(", ")
            )
        })
        .collect();
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
