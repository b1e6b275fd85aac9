//! "My control number": pending payments of the caller's families (or of a CHFID), found
//! through the store's family → payment index ([`crate::app::payments`]).
//!
//! Privacy (`[privacy] control_numbers_to`, issue 14): by CHFID, only a phone linked to the
//! family sees its pending control numbers; any other caller gets `not_linked` (a screen
//! that sends them to "renew", where paying for someone else's family is the supported
//! path), whether or not anything is pending. Otherwise a pending number appearing here
//! would tell whoever guesses an officer's PIN by spoofed SMS that the guess was right.

use crate::app::payments::pending_of_family;
use crate::domain::{Chfid, Family, Id};

use super::{ActionCtx, ActionError, Outcome};

pub fn control_numbers(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let store = &ctx.store;
    let families: Vec<Id> = match Chfid::from_central(ctx.var("chfid")) {
        Ok(c) => match store.insuree_by_chfid(c)? {
            Some(i)
                if ctx
                    .privacy
                    .control_numbers_to
                    .allows(ctx.linked_to(i.family)?) =>
            {
                vec![i.family]
            }
            Some(_) => return Ok(Outcome::named("not_linked")),
            None => return Ok(Outcome::named("not_found")),
        },
        Err(_) => store
            .families_by_phone(&ctx.msisdn)?
            .iter()
            .map(|f: &Family| f.id)
            .collect(),
    };
    let mut lines = Vec::new();
    for f in families {
        for p in pending_of_family(store, f)? {
            let product = p
                .details
                .first()
                .map(|d| d.product_code.clone())
                .unwrap_or_default();
            let cn = p.control_number.clone().unwrap_or_else(|| "-".into());
            lines.push(format!("{cn} TZS {} {product}", p.expected_amount));
        }
    }
    if lines.is_empty() {
        return Ok(Outcome::named("none"));
    }
    Ok(Outcome::named("ok").var("payments", lines.join("\n")))
}
