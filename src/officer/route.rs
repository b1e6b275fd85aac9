//! The officer commands' plug-in to the SMS pipeline: an MO from an officer's phone becomes a
//! job for the [`super::worker`], queued in the transaction that stores the MO.
//!
//! Owns: [`SmsCommands`] (the [`MoHandler`] `serve` puts in the MO pipeline when
//! `[officer] enabled`), [`PinScreen`] (the pipeline's screen with it: PINs checked and
//! masked before the MO is stored, see [`super::screen`]; tests that drive the worker on
//! texts as sent leave it out) and the job queued.
//! Must never: run a command here (the MO's transaction must stay short; the worker runs it
//! and replies), or take an MO from a phone that is no officer's (HELP answers those).

use super::worker::{Job, TOPIC};
use crate::domain::Msisdn;
use crate::sms::inbound::StoredMo;
use crate::sms::router::{MoHandler, MoScreen, Reply, Screening};
use crate::sms::Templates;
use crate::store::{codec, Store, StoreError, TxError, TxResult, WriteTx};
use chrono::{DateTime, Utc};

/// Queues the command in `mo` for the worker, inside the transaction that stores the MO.
/// The replies come from the worker, so none is returned.
fn route_in_tx(tx: &mut WriteTx<'_>, mo: &StoredMo) -> TxResult<Vec<u64>> {
    let payload = codec::encode(&Job { mo: mo.id }).map_err(|source| {
        TxError::from(StoreError::Codec {
            tree: "outbox",
            source,
        })
    })?;
    // The push rings the topic's outbox bell once the commit is done: the worker starts.
    tx.outbox_push(TOPIC, &format!("mo:{}", mo.id), &payload)?;
    Ok(Vec::new())
}

/// The pipeline's handler for officer commands: MO from an officer's phone become jobs for
/// the worker; anything else passes to the next handler.
pub struct SmsCommands;

impl MoHandler for SmsCommands {
    fn handle(
        &self,
        tx: &mut WriteTx<'_>,
        _templates: &Templates,
        mo: &StoredMo,
        from: &Msisdn,
    ) -> TxResult<Option<Vec<Reply>>> {
        if tx.officer_by_phone(from)?.is_none() {
            return Ok(None);
        }
        route_in_tx(tx, mo)?;
        Ok(Some(Vec::new()))
    }

    /// The officer's resend of a command: its first reply again, as the audit trail has it
    /// (no second effect, no SMS to the head). Not answered yet: nothing (the answer is on
    /// its way).
    fn resend(&self, tx: &mut WriteTx<'_>, first: &StoredMo) -> TxResult<Option<Vec<Reply>>> {
        let Some(from) = first.msisdn() else {
            return Ok(None);
        };
        let Some(officer) = tx.officer_by_phone(&from)? else {
            return Ok(None);
        };
        let Some(entry) = super::audit::entry_in(tx, officer.id, first.id)? else {
            return Ok(Some(Vec::new()));
        };
        Ok(Some(vec![Reply {
            to: from,
            language: officer.language,
            template: format!("officer.{}", entry.command),
            text: entry.reply,
        }]))
    }
}

/// The officer commands' [`MoScreen`]: checks and masks the PIN of an officer's command
/// before the MO is stored (see [`super::screen`]); `serve` gives it to the MO pipeline
/// with [`SmsCommands`].
pub struct PinScreen {
    officers: super::Officers,
}

impl PinScreen {
    pub fn new(officers: super::Officers) -> PinScreen {
        PinScreen { officers }
    }
}

impl MoScreen for PinScreen {
    fn screen(&self, store: &Store, from: &Msisdn, text: &str, now: DateTime<Utc>) -> Screening {
        super::screen::screen(&self.officers, store, from, text, now)
    }
}
