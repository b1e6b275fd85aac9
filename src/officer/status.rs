//! STATUS / HALI: a family's cover: per product the latest expiry, then each member's CHFID
//! and status letter (A active, I inactive or unpaid, E expired, S suspended, R ready).
//!
//! Must never: show a name. STATUS carries no PIN (a read, typed often in the field), so
//! anyone who can send an SMS as the officer's number could ask it: it answers with CHFIDs
//! the asker already has to know, and nothing that names a person.

use super::plan::Plan;
use super::{unknown_chfid, Ctx, Field, OfficerError};
use crate::domain::show_date;
use crate::domain::Chfid;

pub fn run(ctx: &Ctx<'_>, chfid: Chfid) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let store = ctx.store;
    let shown = chfid.to_string();
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Plan::reject(unknown_chfid(ctx, Field::Chfid, chfid)));
    };
    let Some(cover) = crate::app::inquiry::family_cover(store, insuree.family, ctx.today)? else {
        return Ok(Plan::answer(g.text(
            "status_none",
            ctx.lang,
            &[("chfid", &shown)],
        )));
    };
    let parts: Vec<String> = cover
        .iter()
        .map(|product| {
            let lines: Vec<String> = product
                .members
                .iter()
                .map(|(m, letter)| format!("{} {}", m.chfid, letter.letter()))
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
        &[("chfid", &shown), ("coverage", &parts.join("; "))],
    )))
}
