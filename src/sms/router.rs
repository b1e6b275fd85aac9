//! The MO router: decides, inside the MO's own transaction, which replies an inbound SMS
//! owes.
//!
//! Owns: the routing rule and the reply keys. Every stored MO from a phone number is offered
//! to the pipeline's [`MoHandler`]s in order ([`super::MoPipeline`], built by `serve`); the
//! first that returns `Some(replies)` decides, and the router enqueues those replies on the
//! durable SMS outbox with the idempotency key `mo:<mo id>:<n>:<template>` (so one MO never
//! owes a reply twice). The last handler, [`Help`], answers anything with the HELP text, in
//! the officer's language when the sender is a known officer (Kiswahili otherwise).
//!
//! # Plugging in a handler (officer SMS commands)
//!
//! Implement [`MoHandler`] and pass it to [`super::MoPipeline::new`]; `serve` passes the
//! officer module's when officer commands are enabled.
//!
//! `handle` runs inside the transaction that stores the MO: business writes made through
//! `tx` commit atomically with the MO and its replies, and the SMSC is answered only after
//! that transaction is flushed. Return `Ok(None)` to pass the MO on (not a command of
//! yours), `Ok(Some(vec![]))` to take it without replying. A command the officer got wrong
//! is a reply (template `command_error`), not an error: an `Err` aborts the transaction
//! and the SMSC is asked to deliver the MO again.
//!
//! # Screening before the MO is stored
//!
//! A [`MoScreen`] (the pipeline's, [`super::MoPipeline::with_screen`]) sees the text BEFORE
//! anything is written (outside the transaction, off the async threads: it may be slow). A
//! channel whose commands carry secrets (officer PINs) checks them there and returns the
//! text to store instead (`****`) and a note of what the check found, kept with the MO
//! ([`super::inbound::note`]). So a PIN never
//! reaches the disk, and a crash before the store leaves the MO unacknowledged (the SMSC
//! delivers it again).
//!
//! Must never: send anything itself, reply to a sender that is not a phone number
//! (alphanumeric senders are services; a reply could loop), or route one MO twice (it is
//! called once, in the transaction that first stores the MO; redeliveries are deduped
//! before it).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::inbound::StoredMo;
use super::outbound::{enqueue, OutboundSms};
use super::templates::Templates;
use crate::domain::{Language, Msisdn};
use crate::store::{Store, StoreError, TxResult, WriteTx};

pub const HELP_TEMPLATE: &str = "help";

/// One SMS an MO owes, already rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub to: Msisdn,
    pub language: Language,
    /// Template name, for reports and the idempotency key.
    pub template: String,
    pub text: String,
}

/// What a [`MoScreen`] makes of an MO's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screened {
    /// The text to store instead (secrets masked).
    pub text: String,
    /// Kept with the MO for the handler (what the check found); never a secret or its hash.
    pub note: Vec<u8>,
    /// Joins the masked text in the redelivery key, in place of the secret: two texts that
    /// differ only in it must not pass for copies of each other (a second guess dropped as a
    /// redelivery would escape the lockout count). The screen makes it as hard to reverse
    /// as what it stands for (a slow hash for a PIN), since the key is stored.
    pub key: Vec<u8>,
}

/// Looks at an MO's text before it is stored. See the module doc.
pub trait MoScreen: Send + Sync {
    /// `Some` when the text must be stored otherwise. Blocking (may hash); an `Err` leaves
    /// the MO unacknowledged.
    fn screen(&self, store: &Store, from: &Msisdn, text: &str, now: DateTime<Utc>) -> Screening;
}

/// What [`MoScreen::screen`] returns.
pub type Screening = Result<Option<Screened>, StoreError>;

/// Several screens as one: each asked in order, the first `Some` wins (a channel's screen
/// answers `None` for texts that are not its commands).
pub struct Screens(pub Vec<Arc<dyn MoScreen>>);

impl MoScreen for Screens {
    fn screen(&self, store: &Store, from: &Msisdn, text: &str, now: DateTime<Utc>) -> Screening {
        for s in &self.0 {
            if let Some(found) = s.screen(store, from, text, now)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// Something that may answer an MO. See the module doc.
pub trait MoHandler: Send + Sync {
    /// The replies MO `first` owes again because its sender sent it again after the
    /// redelivery window (see [`super::inbound`]): `None` passes to the next handler (the
    /// handler that took `first` answers; [`Help`] when none does). Nothing is run again:
    /// this is the first reply, not a second effect. Runs in the transaction that sees the
    /// copy.
    fn resend(&self, _tx: &mut WriteTx<'_>, _first: &StoredMo) -> TxResult<Option<Vec<Reply>>> {
        Ok(None)
    }

    /// `None`: not mine, ask the next handler. `Some(replies)`: handled; enqueue these.
    fn handle(
        &self,
        tx: &mut WriteTx<'_>,
        templates: &Templates,
        mo: &StoredMo,
        from: &Msisdn,
    ) -> TxResult<Option<Vec<Reply>>>;
}

/// The fallback: the HELP text for every MO; to a phone that is neither an officer's nor a
/// family's, only within the SMS cost guard (`[sms_guard]`), when there is one.
#[derive(Default)]
pub struct Help {
    pub guard: Option<Arc<super::cost_guard::CostGuard>>,
}

impl MoHandler for Help {
    fn handle(
        &self,
        tx: &mut WriteTx<'_>,
        templates: &Templates,
        mo: &StoredMo,
        from: &Msisdn,
    ) -> TxResult<Option<Vec<Reply>>> {
        let officer = tx.officer_by_phone(from)?;
        if let (None, Some(guard)) = (&officer, &self.guard) {
            let now = std::time::Instant::now();
            // Stable across re-runs of this transaction (the MO id is not).
            let token = super::inbound::fnv64(&[
                from.as_str().as_bytes(),
                &mo.received_ms.to_be_bytes(),
                mo.text.as_bytes(),
            ]);
            if !guard.known(from, now) && !guard.allow_unknown(from, token, now) {
                // Over the cap: the MO is kept, the paid reply is not queued.
                return Ok(Some(Vec::new()));
            }
        }
        let language = officer.map(|o| o.language).unwrap_or(Language::Sw);
        let Ok(text) = templates.render(HELP_TEMPLATE, language, &HashMap::new()) else {
            // No HELP template configured: storing the MO matters more than the reply.
            return Ok(Some(Vec::new()));
        };
        Ok(Some(vec![Reply {
            to: from.clone(),
            language,
            template: HELP_TEMPLATE.to_string(),
            text,
        }]))
    }
}

/// What `screen` makes of `text` from `from` (a sender that is no phone is not screened).
pub(crate) fn screen(
    screen: Option<&Arc<dyn MoScreen>>,
    store: &Store,
    from: &str,
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Screened>, StoreError> {
    match (screen, Msisdn::parse(from)) {
        (Some(s), Ok(from)) => s.screen(store, &from, text, now),
        _ => Ok(None),
    }
}

/// The first `Some` of `ask` over `handlers`, in order.
fn first_taker(
    handlers: &[Arc<dyn MoHandler>],
    mut ask: impl FnMut(&dyn MoHandler) -> TxResult<Option<Vec<Reply>>>,
) -> TxResult<Option<Vec<Reply>>> {
    for h in handlers {
        if let Some(r) = ask(h.as_ref())? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Enqueues the replies `mo` owes (the first of `handlers` that takes it decides); returns
/// their outbox seqs.
pub(crate) fn route(
    handlers: &[Arc<dyn MoHandler>],
    tx: &mut WriteTx<'_>,
    templates: &Templates,
    mo: &StoredMo,
) -> TxResult<Vec<u64>> {
    let Some(from) = mo.msisdn() else {
        return Ok(Vec::new());
    };
    let replies = first_taker(handlers, |h| h.handle(tx, templates, mo, &from))?;
    enqueue_all(tx, mo, "", replies.unwrap_or_default())
}

/// Enqueues the replies `first` owes again on its `n`-th resend (see
/// [`MoHandler::resend`]); keys `mo:<id>:resend<n>:<i>:<template>`.
pub(crate) fn resend(
    handlers: &[Arc<dyn MoHandler>],
    tx: &mut WriteTx<'_>,
    templates: &Templates,
    first: &StoredMo,
    n: u32,
) -> TxResult<Vec<u64>> {
    let Some(from) = first.msisdn() else {
        return Ok(Vec::new());
    };
    let replies = match first_taker(handlers, |h| h.resend(tx, first))? {
        Some(r) => Some(r),
        // HELP is always the last handler: the resend of HELP stays under its cost guard.
        None => match handlers.last() {
            Some(help) => help.handle(tx, templates, first, &from)?,
            None => None,
        },
    };
    enqueue_all(
        tx,
        first,
        &format!("resend{n}:"),
        replies.unwrap_or_default(),
    )
}

/// Puts `replies` on the SMS outbox, keyed `mo:<id>:<tag><i>:<template>`.
fn enqueue_all(
    tx: &mut WriteTx<'_>,
    mo: &StoredMo,
    tag: &str,
    replies: Vec<Reply>,
) -> TxResult<Vec<u64>> {
    let mut seqs = Vec::with_capacity(replies.len());
    for (n, r) in replies.into_iter().enumerate() {
        let key = format!("mo:{}:{tag}{n}:{}", mo.id, r.template);
        let sms = OutboundSms {
            to: r.to,
            text: r.text,
            template: r.template,
            language: r.language,
            reference: format!("mo:{}", mo.id),
        };
        seqs.push(enqueue(tx, &key, &sms)?);
    }
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::inbound::Channel;
    use crate::sms::{outbound, SMS_TOPIC};
    use crate::store::Store;
    use chrono::Utc;
    use std::path::Path;
    use std::time::Duration;

    /// A command handler as the officer module would write one.
    struct Reg;

    impl MoHandler for Reg {
        fn handle(
            &self,
            _tx: &mut WriteTx<'_>,
            templates: &Templates,
            mo: &StoredMo,
            from: &Msisdn,
        ) -> TxResult<Option<Vec<Reply>>> {
            if !mo.text.starts_with("REG") {
                return Ok(None);
            }
            let vars = HashMap::from([("reason", "CHFID haipo".to_string())]);
            let text = templates
                .render("command_error", Language::Sw, &vars)
                .unwrap_or_default();
            Ok(Some(vec![Reply {
                to: from.clone(),
                language: Language::Sw,
                template: "command_error".into(),
                text,
            }]))
        }
    }

    fn mo(id: u64, from: &str, text: &str) -> StoredMo {
        StoredMo {
            id,
            from: from.into(),
            to: "15200".into(),
            text: text.into(),
            channel: Channel::Smpp,
            received_ms: 0,
            parts: 1,
            complete: true,
            replies: Vec::new(),
        }
    }

    #[test]
    fn the_first_handler_that_takes_an_mo_decides_its_replies_and_help_takes_the_rest() {
        let store = Store::open_temporary().unwrap();
        let tpl =
            Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates")).unwrap();
        let handlers: Vec<Arc<dyn MoHandler>> = vec![Arc::new(Reg), Arc::new(Help::default())];
        let route = |m: &StoredMo| store.write(|tx| route(&handlers, tx, &tpl, m)).unwrap();
        assert_eq!(route(&mo(1, "255754000001", "REG 1")).len(), 1);
        assert_eq!(route(&mo(2, "255754000001", "hello")).len(), 1);
        assert!(
            route(&mo(3, "INFO", "REG 1")).is_empty(),
            "never reply to a service"
        );
        // Routed again (it never is, but if it were): the same keys owe nothing new.
        route(&mo(1, "255754000001", "REG 1"));
        let items = store
            .claim(SMS_TOPIC, 10, Duration::from_secs(5), Utc::now())
            .unwrap();
        let sent: Vec<String> = items
            .iter()
            .map(|i| outbound::decode(&i.payload).unwrap().template)
            .collect();
        assert_eq!(sent, ["command_error", "help"]);
    }
}
