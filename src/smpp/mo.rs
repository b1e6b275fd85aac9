//! What a deliver_sm (or data_sm) from the SMSC becomes: a delivery receipt applied to an
//! SMS status, a USSD hop handed to the USSD adapter, or an MO stored through the inbound
//! pipeline, and the command_status to answer it with.
//!
//! Owns: the choice of answer. ESME_ROK only after the store has flushed what the PDU
//! carried; ESME_RX_T_APPN when the store failed, so that the SMSC delivers it again.
//! Must never: answer before the durable write, or answer an error for content we merely
//! did not understand (that would make the SMSC redeliver it forever).

use std::sync::atomic::Ordering;
use tracing::Instrument;

use chrono::Utc;

use super::metrics::{inc, Metrics};
use super::pdu::{status, DeliverMsg};
use super::{receipt, Shared};
use crate::domain::Msisdn;
use crate::sms::inbound::{self, fnv64, Channel, Dedupe, InboundError, Mo};
use crate::sms::mo_text::{self, Concat};
use crate::sms::reassembly::{self, Part, PartOutcome};
use crate::sms::status::{self as sms_status, ReceiptMatch, SmsState};

fn masked(addr: &str) -> String {
    Msisdn::parse(addr)
        .map(|m| m.masked())
        .unwrap_or_else(|_| "non-msisdn".into())
}

/// Handles one deliver_sm / data_sm; returns the command_status of its response.
pub(crate) async fn handle(shared: &Shared, msg: DeliverMsg) -> u32 {
    if msg.is_receipt() {
        return on_receipt(shared, &msg).await;
    }
    if msg.ussd_service_op.is_some() {
        return super::ussd::on_hop(shared, &msg).await;
    }
    on_mo(shared, msg).await
}

async fn on_receipt(shared: &Shared, msg: &DeliverMsg) -> u32 {
    inc(&shared.metrics.receipts);
    let Some(r) = receipt::parse(msg) else {
        tracing::warn!("unreadable delivery receipt acknowledged and ignored");
        return status::OK;
    };
    let key = shared.settings.id_format.receipt_key(&r.id);
    let span = tracing::info_span!("dlr", message_id = %key, stat = %r.stat);
    async move {
        let applied = sms_status::apply_receipt(&shared.store, &key, r.state, Utc::now());
        let flushed = shared.store.flushed();
        match applied {
            Ok(ReceiptMatch::Matched {
                seq,
                state,
                latency_ms,
            }) => {
                let m = &shared.metrics;
                match state {
                    SmsState::Delivered => inc(&m.sms_delivered),
                    SmsState::Failed => inc(&m.sms_failed),
                    SmsState::Expired => inc(&m.sms_expired),
                    SmsState::Submitted => {}
                }
                if state != SmsState::Submitted {
                    m.dlr_latency_ms_sum
                        .fetch_add(latency_ms.max(0) as u64, Ordering::Relaxed);
                    inc(&m.dlr_latency_count);
                }
                tracing::debug!(seq, ?state, "receipt applied");
            }
            Ok(ReceiptMatch::Early) => tracing::debug!("receipt before its submit_sm_resp; kept"),
            Err(e) => {
                tracing::warn!(error = %e, "storing a receipt failed; asking for redelivery");
                inc(&shared.metrics.mo_temp_failures);
                return status::RX_T_APPN;
            }
        }
        match flushed.await {
            Ok(()) => status::OK,
            Err(_) => status::RX_T_APPN,
        }
    }
    .instrument(span)
    .await
}

async fn on_mo(shared: &Shared, msg: DeliverMsg) -> u32 {
    let s = &shared.settings;
    let span = tracing::info_span!("mo", from = %masked(&msg.source));
    async move {
        let (concat, body) = if msg.udhi() {
            let (c, b) = mo_text::split_udh(&msg.payload);
            (c, b.to_vec())
        } else {
            (None, msg.payload.clone())
        };
        let concat = concat.or_else(|| {
            msg.sar.and_then(|(reference, total, seq)| {
                (total > 1 && (1..=total).contains(&seq)).then_some(Concat {
                    reference,
                    total,
                    seq,
                })
            })
        });
        let now = Utc::now();
        let result = match concat {
            Some(concat) if concat.total > 1 => {
                let part = Part {
                    from: msg.source.clone(),
                    to: msg.dest.clone(),
                    data_coding: msg.data_coding,
                    concat,
                    body,
                    channel: Channel::Smpp,
                };
                reassembly::accept_part(&shared.store, &shared.mo, &part, &s.reassembly, now)
                    .await
                    .map(|o| match o {
                        PartOutcome::Completed(a) => Some(a),
                        _ => None,
                    })
            }
            _ => {
                let text = mo_text::decode(msg.data_coding, &body, s.reassembly.default_alphabet);
                let id = fnv64(&[
                    msg.source.as_bytes(),
                    msg.dest.as_bytes(),
                    &[msg.data_coding],
                    &body,
                ]);
                let mo = Mo {
                    from: msg.source.clone(),
                    to: msg.dest.clone(),
                    text,
                    channel: Channel::Smpp,
                    dedupe: Dedupe::Within(format!("smpp:{id:016x}"), s.reassembly.dedupe_window),
                    parts: 1,
                    complete: true,
                };
                inbound::accept(&shared.store, &shared.mo, &mo, now)
                    .await
                    .map(Some)
            }
        };
        answer(&shared.metrics, result)
    }
    .instrument(span)
    .await
}

fn answer(m: &Metrics, result: Result<Option<inbound::Accepted>, InboundError>) -> u32 {
    match result {
        Ok(Some(a)) => {
            if matches!(a, inbound::Accepted::Stored(_)) {
                inc(&m.mo_received);
            }
            tracing::info!(mo_id = a.id(), "MO stored");
            status::OK
        }
        Ok(None) => status::OK,
        Err(e) => {
            inc(&m.mo_temp_failures);
            tracing::warn!(error = %e, "storing an MO failed; asking for redelivery");
            status::RX_T_APPN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn a_store_failure_asks_the_smsc_to_deliver_again() {
        assert_eq!(
            answer(
                &Metrics::default(),
                Err(InboundError::Store(StoreError::Closed))
            ),
            status::RX_T_APPN
        );
        assert_eq!(answer(&Metrics::default(), Ok(None)), status::OK);
        assert_eq!(
            answer(
                &Metrics::default(),
                Ok(Some(inbound::Accepted::Duplicate(3)))
            ),
            status::OK
        );
    }
}
