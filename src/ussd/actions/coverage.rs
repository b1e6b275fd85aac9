//! Check coverage: a family's products, expiry and per-member status letter; and the
//! families whose head has the caller's phone.

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
    let Some(cover) = crate::app::inquiry::family_cover(store, insuree.family, ctx.today)? else {
        return Ok(Outcome::named("no_policy").var("name", masked_name(&insuree)));
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
                .map(|(m, letter)| format!("{} {}", masked_name(m), letter.letter())),
        );
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
