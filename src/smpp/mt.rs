//! MT: drains the durable SMS outbox (topic `sms`) into the binds.
//!
//! Owns, on the outbox's consumer loop (`crate::store::consumer`, which claims, acks and
//! retries): encode (GSM-7 or UCS2, concatenated with a rotating UDH reference) → one
//! submit job per segment → record the message ids → the verdict, "done" only after every
//! segment's submit_sm_resp; the retry policy (temporary errors back off through the
//! outbox, permanent ones fail the SMS) and the slot count that bounds duplicates.
//! Must never: ack before the SMSC accepted the last segment, or hold more than
//! window × binds entries claimed and not durably acked (so a crash re-sends at most that
//! many messages).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use chrono::Utc;

use super::metrics::inc;
use super::pdu::{relative_validity, SubmitReq};
use super::{Job, Shared, SubmitOutcome};
use crate::shutdown::Signal;
use crate::sms::outbound::decode;
use crate::sms::status::{self as sms_status, SmsState};
use crate::sms::{segment, SMS_TOPIC};
use crate::store::consumer::{
    Consumer, ConsumerLoop, Flushes, LoopOptions, Shape, Unavailable, Verdict,
};
use crate::store::OutboxItem;

/// Statuses that will not succeed on a retry of the same message (SMPP 3.4 §5.1.3):
/// invalid message length, source/destination address, TON/NPI, validity period.
pub fn permanent(status: u32) -> bool {
    matches!(
        status,
        0x01 | 0x0A | 0x0B | 0x48 | 0x49 | 0x50 | 0x51 | 0x62
    )
}

/// Runs until shutdown, on the outbox's consumer loop.
///
/// A slot (one of window × binds) is taken before an entry is claimed and given back only
/// once that entry's ack (or retry) is flushed. So the entries claimed and not yet durably
/// acknowledged never exceed window × binds, whatever the timing, and the pipe stays full
/// without batch boundaries (a batch that waits for its slowest response, then for a flush,
/// leaves the link idle and meets the peer's Nagle delay).
pub(crate) async fn run(shared: Arc<Shared>, stop: Signal) {
    let s = &shared.settings;
    let opts = LoopOptions {
        shape: Shape::Each(s.window * s.binds.max(1)),
        flush: Flushes {
            // The business write that queued an SMS may not be on disk yet: a crash would
            // lose it while the member already has the SMS.
            before_run: true,
            after_settle: true,
            before_settle: false,
        },
        // Let what is in flight finish; what does not stays leased and is claimed again
        // after the restart (not acked, so not lost).
        drain: Duration::from_secs(3),
        ..LoopOptions::new(SMS_TOPIC, s.lease, s.poll)
    };
    let store = shared.store.clone();
    ConsumerLoop::new(store, Arc::new(Drain(shared)), opts)
        .run(stop)
        .await;
}

/// The SMS drain's part of the loop: send each entry, judge its fate.
struct Drain(Arc<Shared>);

impl Consumer for Drain {
    async fn run(&self, items: &[OutboxItem]) -> Result<Vec<Verdict>, Unavailable> {
        let mut verdicts = Vec::with_capacity(items.len());
        for item in items {
            verdicts.push(send(&self.0, item).await);
        }
        Ok(verdicts)
    }

    fn stopping(&self) {
        // A submit waiting for a bind gives up instead of waiting for the drain timeout.
        self.0.stopping.store(true, Ordering::Relaxed);
    }
}

enum Fate {
    Submitted(Vec<String>),
    Permanent(String),
    Temporary(String),
    /// Shutting down: leave the entry leased; it is claimed again after restart.
    Abandoned,
}

async fn send(shared: &Shared, item: &OutboxItem) -> Verdict {
    let s = &shared.settings;
    let store = &shared.store;
    let now = Utc::now;
    let sms = match decode(&item.payload) {
        Ok(sms) => sms,
        Err(e) => {
            return finish(
                shared,
                item.seq,
                Fate::Permanent(format!("undecodable outbox entry: {e}")),
            );
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
                SmsState::Delivered => inc(&shared.metrics.sms_delivered),
                SmsState::Failed => inc(&shared.metrics.sms_failed),
                SmsState::Expired => inc(&shared.metrics.sms_expired),
                SmsState::Submitted => {}
            },
            Err(e) => {
                tracing::warn!(error = %e, "recording message ids failed; receipts will not match")
            }
        }
        tracing::debug!(message_ids = ?ids, "submitted");
    }
    finish(shared, item.seq, fate)
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

/// The verdict for the consumer loop, after counting the fate (and recording a permanent
/// failure on the SMS, in which case the entry is acked: the SMS is settled as failed).
fn finish(shared: &Shared, seq: u64, fate: Fate) -> Verdict {
    let m = &shared.metrics;
    match fate {
        Fate::Submitted(_) => {
            inc(&m.sms_submitted);
            Verdict::Done
        }
        Fate::Permanent(why) => {
            inc(&m.sms_failed);
            tracing::warn!(error = %why, "SMS refused for good");
            match sms_status::record_failed(&shared.store, seq, &why, Utc::now()) {
                Ok(_) => Verdict::Done,
                // A store error is transient: the entry is tried (and judged) again.
                Err(e) => Verdict::Retry(format!("recording the SMS as failed: {e}")),
            }
        }
        Fate::Temporary(why) => {
            tracing::info!(error = %why, "SMS will be retried");
            Verdict::Retry(why)
        }
        Fate::Abandoned => Verdict::Leave,
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
