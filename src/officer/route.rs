//! The officer commands' plug-in to the SMS pipeline: an MO from an officer's phone becomes a
//! job for the [`super::worker`], queued in the transaction that stores the MO.
//!
//! Owns: [`SmsCommands`] (the [`MoHandler`] `serve` puts in the MO pipeline when
//! `[officer] enabled`) and the job it queues.
//! Must never: run a command here (the MO's transaction must stay short; the worker runs it
//! and replies), or take an MO from a phone that is no officer's (HELP answers those).

use super::worker::{Job, TOPIC};
use crate::domain::Msisdn;
use crate::sms::inbound::StoredMo;
use crate::sms::router::{MoHandler, Reply};
use crate::sms::Templates;
use crate::store::{codec, StoreError, TxError, TxResult, WriteTx};

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
}
