//! Delivery status of outbound SMS: queued → submitted (message ids) → delivered / failed /
//! expired.
//!
//! Owns: the status record per outbox seq (aux `sms.status`), the message-id index
//! (`sms.msgid`: normalised SMSC id → seq and that segment's final state) and receipts that
//! arrived before their submit_sm_resp was recorded (`sms.early`).
//! Must never: normalise SMSC ids itself (the SMPP adapter hands over canonical ids), or
//! move a final state backwards (a late intermediate receipt never undoes "delivered").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::inbound::encode;
use crate::store::{codec, Store, StoreError, TxError, TxResult, WriteTx};

const NS_STATUS: &str = "sms.status";
const NS_MSGID: &str = "sms.msgid";
const NS_EARLY: &str = "sms.early";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmsState {
    Submitted,
    Delivered,
    Failed,
    Expired,
}

/// What one delivery receipt says about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptState {
    Delivered,
    Expired,
    Failed,
    /// ENROUTE, ACCEPTD, SCHEDLD...: not final.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsStatus {
    pub seq: u64,
    pub state: SmsState,
    /// Canonical SMSC message id per segment.
    pub message_ids: Vec<String>,
    pub error: Option<String>,
    pub submitted_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct MsgRef {
    seq: u64,
    state: Option<ReceiptState>,
}

/// The outcome of [`apply_receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptMatch {
    /// Matched the SMS `seq`, whose overall state is now `state`; `latency_ms` from submit.
    Matched {
        seq: u64,
        state: SmsState,
        latency_ms: i64,
    },
    /// No submit with that id yet: kept until its submit_sm_resp is recorded.
    Early,
}

fn codec_err(source: codec::CodecError) -> TxError {
    StoreError::Codec {
        tree: "aux",
        source,
    }
    .into()
}

fn load<T: for<'de> Deserialize<'de>>(
    tx: &WriteTx<'_>,
    ns: &str,
    key: &[u8],
) -> Result<Option<T>, TxError> {
    tx.aux_get(ns, key)?
        .map(|raw| codec::decode(&raw).map_err(codec_err))
        .transpose()
}

/// Records that every segment of SMS `seq` was accepted by the SMSC under `ids`
/// (canonical), applying any receipt that raced ahead of this call.
pub fn record_submitted(
    store: &Store,
    seq: u64,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<SmsStatus, StoreError> {
    Ok(store.write_at(now, |tx| -> TxResult<SmsStatus> {
        let now_ms = tx.now().timestamp_millis();
        let mut st = SmsStatus {
            seq,
            state: SmsState::Submitted,
            message_ids: ids.to_vec(),
            error: None,
            submitted_ms: now_ms,
            updated_ms: now_ms,
        };
        for id in ids {
            let early: Option<ReceiptState> = load(tx, NS_EARLY, id.as_bytes())?;
            if early.is_some() {
                tx.aux_remove(NS_EARLY, id.as_bytes())?;
            }
            let r = MsgRef { seq, state: early };
            tx.aux_put(NS_MSGID, id.as_bytes(), &encode(&r)?)?;
        }
        st.state = aggregate(tx, ids)?;
        tx.aux_put(NS_STATUS, &seq.to_be_bytes(), &encode(&st)?)?;
        Ok(st)
    })?)
}

/// Records that the SMSC refused SMS `seq` for good.
pub fn record_failed(
    store: &Store,
    seq: u64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now_ms = now.timestamp_millis();
    let st = SmsStatus {
        seq,
        state: SmsState::Failed,
        message_ids: Vec::new(),
        error: Some(error.to_string()),
        submitted_ms: now_ms,
        updated_ms: now_ms,
    };
    let bytes = codec::encode_aux(&st)?;
    store.aux_put(NS_STATUS, &seq.to_be_bytes(), &bytes)
}

/// The overall state from the segments' receipts: any failure fails the SMS, any expiry
/// expires it, all delivered delivers it.
fn aggregate(tx: &WriteTx<'_>, ids: &[String]) -> Result<SmsState, TxError> {
    let mut states = Vec::with_capacity(ids.len());
    for id in ids {
        let r: Option<MsgRef> = load(tx, NS_MSGID, id.as_bytes())?;
        states.push(r.and_then(|r| r.state));
    }
    Ok(if states.contains(&Some(ReceiptState::Failed)) {
        SmsState::Failed
    } else if states.contains(&Some(ReceiptState::Expired)) {
        SmsState::Expired
    } else if !states.is_empty() && states.iter().all(|s| *s == Some(ReceiptState::Delivered)) {
        SmsState::Delivered
    } else {
        SmsState::Submitted
    })
}

/// Applies a receipt for the canonical message id `id`.
pub fn apply_receipt(
    store: &Store,
    id: &str,
    state: ReceiptState,
    now: DateTime<Utc>,
) -> Result<ReceiptMatch, StoreError> {
    Ok(store.write_at(now, |tx| -> TxResult<ReceiptMatch> {
        let now_ms = tx.now().timestamp_millis();
        let Some(mut r) = load::<MsgRef>(tx, NS_MSGID, id.as_bytes())? else {
            if state != ReceiptState::Pending {
                tx.aux_put(NS_EARLY, id.as_bytes(), &encode(&state)?)?;
            }
            return Ok(ReceiptMatch::Early);
        };
        let seq = r.seq;
        let final_already = matches!(r.state, Some(s) if s != ReceiptState::Pending);
        if !final_already {
            r.state = Some(state);
            tx.aux_put(NS_MSGID, id.as_bytes(), &encode(&r)?)?;
        }
        let Some(mut st) = load::<SmsStatus>(tx, NS_STATUS, &seq.to_be_bytes())? else {
            return Ok(ReceiptMatch::Early);
        };
        st.state = aggregate(tx, &st.message_ids)?;
        st.updated_ms = now_ms;
        tx.aux_put(NS_STATUS, &seq.to_be_bytes(), &encode(&st)?)?;
        Ok(ReceiptMatch::Matched {
            seq,
            state: st.state,
            latency_ms: now_ms.saturating_sub(st.submitted_ms),
        })
    })?)
}

/// The status of SMS `seq`; `None` while it is queued (or unknown).
pub fn get(store: &Store, seq: u64) -> Result<Option<SmsStatus>, StoreError> {
    store
        .aux_get(NS_STATUS, &seq.to_be_bytes())?
        .map(|raw| codec::decode_aux(&raw))
        .transpose()
}

/// Every status record (operators and tests; scans).
pub fn all(store: &Store) -> Result<Vec<SmsStatus>, StoreError> {
    store
        .aux_scan(NS_STATUS, b"")?
        .into_iter()
        .map(|(_, v)| codec::decode_aux(&v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_two_part_sms_is_delivered_once_both_receipts_say_so() {
        let store = Store::open_temporary().unwrap();
        let now = Utc::now();
        let st = record_submitted(&store, 7, &ids(&["10", "11"]), now).unwrap();
        assert_eq!(st.state, SmsState::Submitted);
        let m = apply_receipt(&store, "10", ReceiptState::Delivered, now).unwrap();
        assert!(matches!(
            m,
            ReceiptMatch::Matched {
                seq: 7,
                state: SmsState::Submitted,
                ..
            }
        ));
        let m = apply_receipt(&store, "11", ReceiptState::Delivered, now).unwrap();
        assert!(matches!(
            m,
            ReceiptMatch::Matched {
                seq: 7,
                state: SmsState::Delivered,
                ..
            }
        ));
        // A late intermediate receipt does not undo it.
        apply_receipt(&store, "11", ReceiptState::Pending, now).unwrap();
        assert_eq!(get(&store, 7).unwrap().unwrap().state, SmsState::Delivered);
    }

    #[test]
    fn a_receipt_before_its_submit_response_is_applied_when_the_response_is_recorded() {
        let store = Store::open_temporary().unwrap();
        let now = Utc::now();
        assert_eq!(
            apply_receipt(&store, "2a", ReceiptState::Expired, now).unwrap(),
            ReceiptMatch::Early
        );
        let st = record_submitted(&store, 9, &ids(&["2a"]), now).unwrap();
        assert_eq!(st.state, SmsState::Expired);
        assert_eq!(
            apply_receipt(&store, "zz", ReceiptState::Pending, now).unwrap(),
            ReceiptMatch::Early
        );
    }

    #[test]
    fn failures_win_and_permanent_rejections_are_recorded() {
        let store = Store::open_temporary().unwrap();
        let now = Utc::now();
        record_submitted(&store, 1, &ids(&["a", "b"]), now).unwrap();
        apply_receipt(&store, "a", ReceiptState::Delivered, now).unwrap();
        apply_receipt(&store, "b", ReceiptState::Failed, now).unwrap();
        assert_eq!(get(&store, 1).unwrap().unwrap().state, SmsState::Failed);
        record_failed(&store, 2, "ESME_RINVDSTADR", now).unwrap();
        let st = get(&store, 2).unwrap().unwrap();
        assert_eq!(
            (st.state, st.error.as_deref()),
            (SmsState::Failed, Some("ESME_RINVDSTADR"))
        );
        assert_eq!(get(&store, 3).unwrap(), None);
        assert_eq!(all(&store).unwrap().len(), 2);
    }
}
