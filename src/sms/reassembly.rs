//! Multipart MO reassembly: segments (UDH 8/16-bit references or SAR TLVs) wait in the
//! store until the last one arrives, then become one MO in the same transaction.
//!
//! Owns: the part buffers (aux `sms.mo.part`, one key per segment, so a redelivered
//! segment overwrites itself), the completion markers (`sms.mo.partdone`), the size cap
//! and the timeout sweep, which stores what arrived as an incomplete MO.
//! Must never: keep a buffer forever, or decode segments one by one (a UCS2 surrogate pair
//! or a GSM escape may straddle two segments: bytes are joined first, then decoded).
//!
//! The completed MO is screened like any other ([`super::router::MoScreen`], here
//! inside the transaction that consumes the last part). Known gap: the segments themselves
//! wait in `sms.mo.part` as received, so an officer command longer than one SMS has its PIN
//! on disk until the message completes.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::inbound::{self, encode, fnv64, Accepted, Channel, Dedupe, InboundError, Mo};
use super::mo_text::{self, Concat, DefaultAlphabet};
use super::pipeline::MoPipeline;
use crate::store::{codec, Store, StoreError, TxResult};

const NS_PART: &str = "sms.mo.part";
const NS_DONE: &str = "sms.mo.partdone";

/// Limits and decoding rules of reassembly.
#[derive(Debug, Clone)]
pub struct Policy {
    pub timeout: Duration,
    pub max_parts: u8,
    pub default_alphabet: DefaultAlphabet,
    pub dedupe_window: Duration,
}

/// One segment as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub from: String,
    pub to: String,
    pub data_coding: u8,
    pub concat: Concat,
    pub body: Vec<u8>,
    pub channel: Channel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Stored; more segments are awaited.
    Buffered,
    /// This was the last segment: the whole MO is stored.
    Completed(Accepted),
    /// A copy of a segment of a message already completed.
    Duplicate,
    /// Over the size cap: acknowledged and dropped.
    Refused,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    to: String,
    data_coding: u8,
    body: Vec<u8>,
    arrived_ms: i64,
}

fn prefix(from: &str, c: Concat) -> Vec<u8> {
    format!("{from}\0{}\0{}\0", c.reference, c.total).into_bytes()
}

/// Buffers `part` durably; when it completes its message, stores the MO (and its
/// replies) in the same transaction. Resolves once flushed.
pub async fn accept_part(
    store: &Store,
    pipeline: &MoPipeline,
    part: &Part,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<PartOutcome, InboundError> {
    if part.concat.total > policy.max_parts {
        tracing::warn!(
            total = part.concat.total,
            cap = policy.max_parts,
            "multipart MO over the size cap dropped"
        );
        return Ok(PartOutcome::Refused);
    }
    // The completed MO is screened before the transaction that stores it: the first run
    // finds what the parts spell, then it runs again with that text screened (at most a few
    // times, if copies of segments keep changing it).
    let mut screened = inbound::Prescreened::default();
    for _ in 0..3 {
        match store_part(store, pipeline, part, policy, now, &screened)? {
            Step::Done(out) => {
                store.flushed().await?;
                return Ok(out);
            }
            Step::Screen(mo) => screened = inbound::prescreen(store, pipeline, &mo, now).await?,
        }
    }
    Err(InboundError::Unsettled)
}

/// One transaction of [`accept_part`].
enum Step {
    Done(PartOutcome),
    /// The part completes this MO, which was not screened yet.
    Screen(Mo),
}

/// Stores `part`; when it completes its message and `screened` is that message's
/// screening, stores the MO (and its replies) in the same transaction. Unflushed.
fn store_part(
    store: &Store,
    pipeline: &MoPipeline,
    part: &Part,
    policy: &Policy,
    now: DateTime<Utc>,
    screened: &inbound::Prescreened,
) -> Result<Step, InboundError> {
    let pre = prefix(&part.from, part.concat);
    // A copy of a segment is the SMSC's for as long as it could still be waiting for its
    // message: the redelivery window may be short (seconds) while reassembly waits minutes.
    let window =
        i64::try_from(policy.dedupe_window.max(policy.timeout).as_millis()).unwrap_or(i64::MAX);
    let out = store.write_at(now, |tx| -> TxResult<Step> {
        let now_ms = tx.now().timestamp_millis();
        if let Some(raw) = tx.aux_get(NS_DONE, &pre)? {
            let at = raw
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_be_bytes)
                .unwrap_or(0);
            if now_ms.saturating_sub(at) < window {
                return Ok(Step::Done(PartOutcome::Duplicate));
            }
        }
        let mut key = pre.clone();
        key.push(part.concat.seq);
        let rec = Stored {
            to: part.to.clone(),
            data_coding: part.data_coding,
            body: part.body.clone(),
            arrived_ms: now_ms,
        };
        tx.aux_put(NS_PART, &key, &encode(&rec)?)?;
        let mut segments = Vec::with_capacity(usize::from(part.concat.total));
        for seq in 1..=part.concat.total {
            let mut k = pre.clone();
            k.push(seq);
            match tx.aux_get(NS_PART, &k)? {
                Some(raw) => segments.push(decode_stored(&raw)?),
                None => return Ok(Step::Done(PartOutcome::Buffered)),
            }
        }
        let mo = assemble(
            &part.from,
            part.concat,
            &segments,
            true,
            policy,
            part.channel,
        );
        let Some(accepted) = inbound::store_in(tx, pipeline, &mo, screened)? else {
            return Ok(Step::Screen(mo));
        };
        for seq in 1..=part.concat.total {
            let mut k = pre.clone();
            k.push(seq);
            tx.aux_remove(NS_PART, &k)?;
        }
        tx.aux_put(NS_DONE, &pre, &now_ms.to_be_bytes())?;
        Ok(Step::Done(PartOutcome::Completed(accepted)))
    })?;
    Ok(out)
}

fn decode_stored(raw: &[u8]) -> Result<Stored, crate::store::TxError> {
    codec::decode(raw).map_err(|source| {
        StoreError::Codec {
            tree: "aux",
            source,
        }
        .into()
    })
}

fn assemble(
    from: &str,
    concat: Concat,
    segments: &[Stored],
    complete: bool,
    policy: &Policy,
    channel: Channel,
) -> Mo {
    let data_coding = segments.first().map(|s| s.data_coding).unwrap_or(0);
    let bytes: Vec<u8> = segments
        .iter()
        .flat_map(|s| s.body.iter().copied())
        .collect();
    let text = mo_text::decode(data_coding, &bytes, policy.default_alphabet);
    let to = segments.first().map(|s| s.to.clone()).unwrap_or_default();
    let id = fnv64(&[
        from.as_bytes(),
        &concat.reference.to_be_bytes(),
        &[concat.total],
        text.as_bytes(),
    ]);
    Mo {
        from: from.to_string(),
        to,
        text,
        channel,
        dedupe: Dedupe::Within(format!("part:{id:016x}"), policy.dedupe_window),
        parts: segments.len() as u8,
        complete,
    }
}

/// Stores every buffer older than the timeout as an incomplete MO (the segments that did
/// arrive, in order). Returns how many MO it stored.
pub async fn sweep(
    store: &Store,
    pipeline: &MoPipeline,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<usize, InboundError> {
    let timeout = i64::try_from(policy.timeout.as_millis()).unwrap_or(i64::MAX);
    let mut buffers: BTreeMap<Vec<u8>, Vec<(u8, Stored)>> = BTreeMap::new();
    for (key, raw) in store.aux_scan(NS_PART, b"")? {
        let Some((&seq, pre)) = key.split_last() else {
            continue;
        };
        let rec: Stored = codec::decode(&raw).map_err(|source| StoreError::Codec {
            tree: "aux",
            source,
        })?;
        buffers.entry(pre.to_vec()).or_default().push((seq, rec));
    }
    let now_ms = now.timestamp_millis();
    let mut stored = 0;
    for (pre, mut parts) in buffers {
        let oldest = parts
            .iter()
            .map(|(_, r)| r.arrived_ms)
            .min()
            .unwrap_or(now_ms);
        if now_ms.saturating_sub(oldest) < timeout {
            continue;
        }
        let Some((from, concat)) = parse_prefix(&pre) else {
            continue;
        };
        parts.sort_by_key(|(seq, _)| *seq);
        let seqs: Vec<u8> = parts.iter().map(|(s, _)| *s).collect();
        let segments: Vec<Stored> = parts.into_iter().map(|(_, r)| r).collect();
        let mo = assemble(&from, concat, &segments, false, policy, Channel::Smpp);
        let screened = inbound::prescreen(store, pipeline, &mo, now).await?;
        store.write_at(now, |tx| -> TxResult<Option<Accepted>> {
            let a = inbound::store_in(tx, pipeline, &mo, &screened)?;
            for &seq in &seqs {
                let mut k = pre.clone();
                k.push(seq);
                tx.aux_remove(NS_PART, &k)?;
            }
            tx.aux_put(NS_DONE, &pre, &now_ms.to_be_bytes())?;
            Ok(a)
        })?;
        tracing::warn!(
            reference = concat.reference,
            got = seqs.len(),
            total = concat.total,
            "multipart MO timed out; stored what arrived"
        );
        stored += 1;
    }
    store.flushed().await?;
    Ok(stored)
}

fn parse_prefix(pre: &[u8]) -> Option<(String, Concat)> {
    let s = std::str::from_utf8(pre).ok()?;
    let mut it = s.split('\0');
    let from = it.next()?.to_string();
    let reference = it.next()?.parse().ok()?;
    let total = it.next()?.parse().ok()?;
    Some((
        from,
        Concat {
            reference,
            total,
            seq: 1,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::inbound;
    use crate::sms::Templates;
    use crate::sms::SMS_TOPIC;
    use chrono::TimeZone;
    use std::path::Path;

    fn policy() -> Policy {
        Policy {
            timeout: Duration::from_secs(60),
            max_parts: 5,
            default_alphabet: DefaultAlphabet::Gsm7,
            dedupe_window: Duration::from_secs(600),
        }
    }

    fn tpl() -> MoPipeline {
        let t = Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates"));
        MoPipeline::new(std::sync::Arc::new(t.unwrap()), Vec::new())
    }

    fn part(seq: u8, total: u8, dc: u8, body: &[u8]) -> Part {
        Part {
            from: "255754000001".into(),
            to: "15200".into(),
            data_coding: dc,
            concat: Concat {
                reference: 300,
                total,
                seq,
            },
            body: body.to_vec(),
            channel: Channel::Smpp,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    #[tokio::test]
    async fn segments_in_any_order_become_one_mo_even_with_a_split_surrogate_pair() {
        let store = Store::open_temporary().unwrap();
        let (p, tpl) = (policy(), tpl());
        // "A😀" in UTF-16BE, cut inside the surrogate pair.
        let all = [0x00, 0x41, 0xd8, 0x3d, 0xde, 0x00];
        let p2 = part(2, 2, 8, &all[3..]);
        let p1 = part(1, 2, 8, &all[..3]);
        assert_eq!(
            accept_part(&store, &tpl, &p2, &p, t(0)).await.unwrap(),
            PartOutcome::Buffered
        );
        // A redelivered segment overwrites itself.
        assert_eq!(
            accept_part(&store, &tpl, &p2, &p, t(1)).await.unwrap(),
            PartOutcome::Buffered
        );
        let done = accept_part(&store, &tpl, &p1, &p, t(2)).await.unwrap();
        let PartOutcome::Completed(Accepted::Stored(id)) = done else {
            panic!("{done:?}")
        };
        let mo = inbound::get(&store, id).unwrap().unwrap();
        assert_eq!((mo.text.as_str(), mo.parts, mo.complete), ("A😀", 2, true));
        assert_eq!(store.pending_count(SMS_TOPIC).unwrap(), 1, "one HELP reply");
        // A late copy of a segment of the finished message is recognised.
        assert_eq!(
            accept_part(&store, &tpl, &p1, &p, t(3)).await.unwrap(),
            PartOutcome::Duplicate
        );
        assert!(store.aux_scan(NS_PART, b"").unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_incomplete_message_is_stored_after_the_timeout_and_oversized_ones_refused() {
        let store = Store::open_temporary().unwrap();
        let (p, tpl) = (policy(), tpl());
        accept_part(&store, &tpl, &part(1, 3, 0, b"REG "), &p, t(0))
            .await
            .unwrap();
        accept_part(&store, &tpl, &part(3, 3, 0, b"Kibera"), &p, t(5))
            .await
            .unwrap();
        assert_eq!(sweep(&store, &tpl, &p, t(30)).await.unwrap(), 0);
        assert_eq!(sweep(&store, &tpl, &p, t(61)).await.unwrap(), 1);
        let mos = inbound::all(&store).unwrap();
        assert_eq!(mos.len(), 1);
        assert_eq!(
            (mos[0].text.as_str(), mos[0].complete),
            ("REG Kibera", false)
        );
        assert_eq!(sweep(&store, &tpl, &p, t(200)).await.unwrap(), 0);
        let big = part(1, 6, 0, b"x");
        assert_eq!(
            accept_part(&store, &tpl, &big, &p, t(0)).await.unwrap(),
            PartOutcome::Refused
        );
    }
}
