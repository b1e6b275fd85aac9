//! The MO router: decides, inside the MO's own transaction, which replies an inbound SMS
//! owes.
//!
//! Owns: the routing rule. For now every MO from a phone number gets the HELP text, in the
//! officer's language when the sender is a known officer (Kiswahili otherwise); officer
//! commands arrive in a later issue and plug in here.
//! Must never: send anything itself, or reply to a sender that is not a phone number
//! (alphanumeric senders are services; a reply could loop).

use std::collections::HashMap;

use super::inbound::StoredMo;
use super::outbound::{enqueue, OutboundSms};
use super::templates::Templates;
use crate::domain::Language;
use crate::store::{TxResult, WriteTx};

pub const HELP_TEMPLATE: &str = "help";

/// Enqueues the replies `mo` owes; returns their outbox seqs.
pub(crate) fn route(
    tx: &mut WriteTx<'_>,
    templates: &Templates,
    mo: &StoredMo,
) -> TxResult<Vec<u64>> {
    let Some(to) = mo.msisdn() else {
        return Ok(Vec::new());
    };
    let language = tx
        .officer_by_phone(&to)?
        .map(|o| o.language)
        .unwrap_or(Language::Sw);
    let Ok(text) = templates.render(HELP_TEMPLATE, language, &HashMap::new()) else {
        // No HELP template configured: storing the MO matters more than the reply.
        return Ok(Vec::new());
    };
    let sms = OutboundSms {
        to,
        text,
        template: HELP_TEMPLATE.to_string(),
        language,
        reference: format!("mo:{}", mo.id),
    };
    let seq = enqueue(tx, &format!("mo:{}:help", mo.id), &sms)?;
    Ok(vec![seq])
}
