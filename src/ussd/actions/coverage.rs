//! Check coverage: a family's products, expiry and per-member status letter; and the
//! families whose head has the caller's phone.
//!
//! Privacy (`[privacy] names_to`, issue 14): a caller whose phone is not linked to the
//! family sees, by default, no name at all: the family is named by the CHFID they typed,
//! and of the members only that CHFID's own letter is shown (so not even the family's size
//! leaks). Product codes and expiry dates are still told: a facility checking a patient's
//! card needs exactly that.

use super::{masked_name, ActionCtx, ActionError, Outcome};
use crate::domain::show_date;
use crate::domain::Chfid;

pub fn coverage(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let Ok(chfid) = Chfid::from_central(ctx.var("chfid")) else {
        return Ok(Outcome::named("not_found"));
    };
    let store = &ctx.store;
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(Outcome::named("not_found"));
    };
    let names = ctx.privacy.names_to.allows(ctx.linked_to(insuree.family)?);
    let name = if names {
        masked_name(&insuree)
    } else {
        insuree.chfid.to_string()
    };
    let Some(cover) = crate::app::inquiry::family_cover(store, insuree.family, ctx.today)? else {
        return Ok(Outcome::named("no_policy").var("name", name));
    };
    let mut text = Vec::new();
    for product in cover {
        // No member has a coverage row under the product: no date to tell, only the letters.
        let expiry = product.expiry.map_or_else(|| "-".to_string(), show_date);
        text.push(format!("{} {expiry}", product.code));
        text.extend(
            product
                .members
                .iter()
                .filter(|(m, _)| names || m.id == insuree.id)
                .map(|(m, letter)| {
                    let who = if names { masked_name(m) } else { name.clone() };
                    format!("{who} {}", letter.letter())
                }),
        );
    }
    Ok(Outcome::named("ok")
        .var("name", name)
        .var("coverage", text.join("\n")))
}

/// The families whose head has the caller's phone, as a list to pick a CHFID from.
pub fn families(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let mut items = Vec::new();
    for f in ctx.store.families_by_phone(&ctx.msisdn)? {
        if let Some(head) = ctx.store.insuree(f.head)? {
            let chfid = head.chfid.to_string();
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
