//! MT: drains the durable SMS outbox (topic `sms`) into the binds.
//!
//! Owns: claim with a lease → encode (GSM-7 or UCS2, concatenated with a rotating UDH
//! reference) → one submit job per segment → record the message ids → ack, only after
//! every segment's submit_sm_resp; the retry policy (temporary errors back off through the
//! outbox, permanent ones fail the SMS) and the slots that bound duplicates.
//! Must never: ack before the SMSC accepted the last segment, or hold more than
//! window × binds entries claimed and not durably acked (so a crash re-sends at most that
//! many messages).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::metrics::{inc, metrics};
use super::pdu::{relative_validity, SubmitReq};
use super::{Job, Shared, SubmitOutcome};
use crate::shutdown::Signal;
use crate::sms::outbound::decode;
use crate::sms::status::{self as sms_status, SmsState};
use crate::sms::{segment, SMS_TOPIC};
use crate::store::OutboxItem;

/// Statuses that will not succeed on a retry of the same message (SMPP 3.4 §5.1.3):
/// invalid message length, source/destination address, TON/NPI, validity period.
pub fn permanent(status: u32) -> bool {
    matches!(
        status,
        0x01 | 0x0A | 0x0B | 0x48 | 0x49 | 0x50 | 0x51 | 0x62
    )
}

/// Runs until shutdown.
///
/// A slot (one of window × binds) is taken before an entry is claimed and given back only
/// once that entry's ack (or retry) is flushed. So the entries claimed and not yet durably
/// acknowledged never exceed window × binds, whatever the timing, and the pipe stays full
/// without batch boundaries (a batch that waits for its slowest response, then for a flush,
/// leaves the link idle and meets the peer's Nagle delay).
pub(crate) async fn run(shared: Arc<Shared>, mut stop: Signal) {
    let s = &shared.settings;
    let slots = s.window * s.binds.max(1);
    let free = Arc::new(Semaphore::new(slots));
    // Entries being sent right now. One that waits longer than its lease (no bind is up)
    // is claimed again; sending that second copy too would deliver the SMS twice.
    let sending: Arc<Mutex<HashSet<u64>>> = Arc::default();
    // Rung when an SMS is queued: a reply leaves at once, not at the next poll.
    let bell = shared.store.outbox_bell(SMS_TOPIC);
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let first = tokio::select! {
            p = free.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.recv() => break,
        };
        let mut permits = vec![first];
        while let Ok(p) = free.clone().try_acquire_owned() {
            permits.push(p);
        }
        let items = match shared
            .store
            .claim(SMS_TOPIC, permits.len(), s.lease, Utc::now())
        {
            Ok(items) => {
                let mut busy = sending.lock().unwrap_or_else(|p| p.into_inner());
                items
                    .into_iter()
                    .filter(|i| busy.insert(i.seq))
                    .collect::<Vec<_>>()
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming SMS from the outbox failed");
                Vec::new()
            }
        };
        if items.is_empty() {
            drop(permits);
            tokio::select! {
                _ = tokio::time::sleep(s.poll) => continue,
                _ = bell.notified() => continue,
                _ = stop.recv() => break,
            }
        }
        // The business write that queued an SMS may not be on disk yet: a crash now would
        // lose it while the member already has the SMS.
        if let Err(e) = shared.store.flushed().await {
            tracing::warn!(error = %e, "flushing before sending failed; retrying after the lease");
            {
                let mut busy = sending.lock().unwrap_or_else(|p| p.into_inner());
                for i in &items {
                    busy.remove(&i.seq);
                }
            }
            drop(permits);
            tokio::select! {
                _ = tokio::time::sleep(s.poll) => continue,
                _ = stop.recv() => break,
            }
        }
        for (item, permit) in items.into_iter().zip(permits) {
            let shared = shared.clone();
            let sending = sending.clone();
            tasks.spawn(async move {
                // Dropped last, also when the task panics or is aborted: the entry can be
                // claimed and sent again after its lease.
                let _sending = Sending(sending, item.seq);
                send(&shared, item).await;
                if let Err(e) = shared.store.flushed().await {
                    tracing::warn!(error = %e, "flushing an SMS ack failed");
                }
                drop(permit);
            });
        }
    }
    shared.stopping.store(true, Ordering::Relaxed);
    // Let what is in flight finish; what does not stays leased and is claimed again after
    // the restart (not acked, so not lost).
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(3), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
}

/// An entry marked as being sent, unmarked on drop.
struct Sending(Arc<Mutex<HashSet<u64>>>, u64);

impl Drop for Sending {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

enum Fate {
    Submitted(Vec<String>),
    Permanent(String),
    Temporary(String),
    /// Shutting down: leave the entry leased; it is claimed again after restart.
    Abandoned,
}

async fn send(shared: &Shared, item: OutboxItem) {
    let s = &shared.settings;
    let store = &shared.store;
    let now = Utc::now;
    let sms = match decode(&item.payload) {
        Ok(sms) => sms,
        Err(e) => {
            finish(
                shared,
                item.seq,
                Fate::Permanent(format!("undecodable outbox entry: {e}")),
            );
            return;
        }
    };
    let span =
        tracing::info_span!("mt", seq = item.seq, to = %sms.to.masked(), template = %sms.template);
    async move {
    let reference = shared.next_reference();
    let fate = match segment::encode(&sms.text, reference) {
        Err(e) => Fate::Permanent(e.to_string()),
        Ok(enc) => {
            let mut ids = Vec::with_capacity(enc.parts.len());
            let mut fate = None;
            for payload in enc.parts {
                let req = SubmitReq {
                    source: s.source.clone(),
                    dest: sms.to.as_str().to_string(),
                    data_coding: enc.data_coding,
                    esm_class: if enc.udhi { 0x40 } else { 0x00 },
                    payload,
                    registered_delivery: s.registered_delivery,
                    validity: (s.validity_secs > 0).then(|| relative_validity(s.validity_secs)),
                    ussd_service_op: None,
                    its_session_info: None,
                };
                match submit(shared, req).await {
                    Ok(id) => ids.push(s.id_format.submit_key(&id)),
                    Err(f) => {
                        fate = Some(f);
                        break;
                    }
                }
            }
            fate.unwrap_or(Fate::Submitted(ids))
        }
    };
    if let Fate::Submitted(ids) = &fate {
        match sms_status::record_submitted(store, item.seq, ids, now()) {
            // Receipts that raced ahead of the submit_sm_resp were applied just now: count
            // the final state here, since the receipt handler saw no SMS to count it on.
            Ok(st) => match st.state {
                SmsState::Delivered => inc(&metrics().sms_delivered),
                SmsState::Failed => inc(&metrics().sms_failed),
                SmsState::Expired => inc(&metrics().sms_expired),
                SmsState::Submitted => {}
            },
            Err(e) => {
                tracing::warn!(error = %e, "recording message ids failed; receipts will not match")
            }
        }
        tracing::debug!(message_ids = ?ids, "submitted");
    }
    finish(shared, item.seq, fate);
}
    .instrument(span)
    .await
}

async fn submit(shared: &Shared, req: SubmitReq) -> Result<String, Fate> {
    loop {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            req: req.clone(),
            reply: tx,
        };
        if shared.jobs_tx.send(job).await.is_err() {
            return Err(Fate::Abandoned);
        }
        match rx.await {
            Ok(SubmitOutcome::Accepted(id)) => return Ok(id),
            Ok(SubmitOutcome::Rejected(st)) if permanent(st) => {
                return Err(Fate::Permanent(format!("submit_sm_resp status 0x{st:08x}")))
            }
            Ok(SubmitOutcome::Rejected(st)) => {
                return Err(Fate::Temporary(format!("submit_sm_resp status 0x{st:08x}")))
            }
            Ok(SubmitOutcome::Invalid(e)) => return Err(Fate::Permanent(e)),
            Ok(SubmitOutcome::Requeue) | Err(_) => {
                if shared.stopping.load(Ordering::Relaxed) {
                    return Err(Fate::Abandoned);
                }
                // The bind dropped or timed out: another bind (or this one, rebound) sends it.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn finish(shared: &Shared, seq: u64, fate: Fate) {
    let store = &shared.store;
    let m = metrics();
    let r = match fate {
        Fate::Submitted(_) => {
            inc(&m.sms_submitted);
            store.ack(SMS_TOPIC, seq).map(|_| ())
        }
        Fate::Permanent(why) => {
            inc(&m.sms_failed);
            tracing::warn!(error = %why, "SMS refused for good");
            sms_status::record_failed(store, seq, &why, Utc::now())
                .and_then(|_| store.ack(SMS_TOPIC, seq).map(|_| ()))
        }
        Fate::Temporary(why) => {
            tracing::info!(error = %why, "SMS will be retried");
            store.retry(SMS_TOPIC, seq, &why, Utc::now()).map(|_| ())
        }
        Fate::Abandoned => Ok(()),
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, seq, "updating the SMS outbox failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_errors_are_permanent() {
        assert!(permanent(0x0B), "invalid destination");
        assert!(permanent(0x01), "invalid length");
        assert!(!permanent(0x08), "system error is temporary");
        assert!(!permanent(0x45), "submit failed is temporary");
        assert!(
            !permanent(0x58),
            "throttling is handled by the bind, never final"
        );
    }
}
