//! Multipart MO reassembly (src/sms/reassembly.rs) driven by a fuzzed sequence of segments
//! (redelivered, out of order, over the cap, from two senders, with time passing) and timeout
//! sweeps, against a model of what must happen: a message completes exactly when its last
//! missing segment arrives, its text is its segments' bytes joined in order and then decoded,
//! copies of a finished message are duplicates, a sweep stores each timed-out buffer once,
//! and no buffer outlives a sweep past its timeout. One fresh store per input.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use imis_gateway::sms::inbound::{self, Accepted, Channel};
use imis_gateway::sms::mo_text::{self, Concat, DefaultAlphabet};
use imis_gateway::sms::reassembly::{accept_part, sweep, Part, PartOutcome, Policy};
use imis_gateway::store::{Store, StoreOptions};
use imis_gateway_fuzz::{runtime, templates};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const TIMEOUT_MS: i64 = 60_000;
const WINDOW_MS: i64 = 600_000;
const SENDERS: [&str; 2] = ["255754000001", "255754000002"];

type Key = (usize, u16, u8);
/// One buffered segment: (data_coding, body, arrived ms), by seq.
type Segments = BTreeMap<u8, (u8, Vec<u8>, i64)>;

#[derive(Default)]
struct Model {
    /// Buffered segments: seq → (data_coding, body, arrived ms).
    buffers: HashMap<Key, Segments>,
    /// When each message was finished (completed or swept).
    done: HashMap<Key, i64>,
}

enum Op {
    Part {
        key: Key,
        seq: u8,
        dc: u8,
        body: Vec<u8>,
    },
    Sweep,
    Wait(i64),
}

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => Op::Sweep,
        1 => Op::Wait(i64::from(u.int_in_range(0u32..=700_000)?)),
        _ => {
            let key = (
                usize::from(u.arbitrary::<bool>()?),
                u16::from(u.int_in_range(0u8..=2)?) * 300,
                u.int_in_range(1u8..=7)?,
            );
            let seq = u.int_in_range(1u8..=key.2)?;
            let dc = *u.choose(&[0x00, 0x08, 0x03, 0xF1])?;
            let len = u.int_in_range(0usize..=12)?;
            let body = u.bytes(len)?.to_vec();
            Op::Part { key, seq, dc, body }
        }
    })
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0)
        .single()
        .expect("date")
        + chrono::Duration::milliseconds(ms)
}

fn expected_text(segs: &Segments) -> String {
    let dc = segs.values().next().map(|s| s.0).unwrap_or(0);
    let bytes: Vec<u8> = segs.values().flat_map(|s| s.1.iter().copied()).collect();
    mo_text::decode(dc, &bytes, DefaultAlphabet::Gsm7)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let policy = Policy {
        timeout: Duration::from_millis(TIMEOUT_MS as u64),
        max_parts: 5,
        default_alphabet: DefaultAlphabet::Gsm7,
        dedupe_window: Duration::from_millis(WINDOW_MS as u64),
    };
    let store = Store::open_temporary_with(StoreOptions {
        cache_capacity: 1 << 20,
        flush_every_ms: None,
        ..StoreOptions::default()
    })
    .expect("temporary store");
    let tpl = &imis_gateway::sms::MoPipeline::new(templates().clone(), Vec::new());
    let mut model = Model::default();
    let mut now = 0i64;
    let rt = runtime();
    for _ in 0..24 {
        let Ok(o) = op(&mut u) else { break };
        now += 1;
        match o {
            Op::Wait(ms) => now += ms,
            Op::Sweep => {
                let n = rt
                    .block_on(sweep(&store, tpl, &policy, at(now)))
                    .expect("sweep");
                let due: Vec<Key> = model
                    .buffers
                    .iter()
                    .filter(|(_, segs)| {
                        let oldest = segs.values().map(|s| s.2).min().unwrap_or(now);
                        now - oldest >= TIMEOUT_MS
                    })
                    .map(|(k, _)| *k)
                    .collect();
                assert_eq!(
                    n,
                    due.len(),
                    "sweep stored {n} MO, {} buffers were due",
                    due.len()
                );
                for k in due {
                    model.buffers.remove(&k);
                    model.done.insert(k, now);
                }
            }
            Op::Part { key, seq, dc, body } => {
                let part = Part {
                    from: SENDERS[key.0].to_string(),
                    to: "15200".into(),
                    data_coding: dc,
                    concat: Concat {
                        reference: key.1,
                        total: key.2,
                        seq,
                    },
                    body: body.clone(),
                    channel: Channel::Smpp,
                };
                let got = rt
                    .block_on(accept_part(&store, tpl, &part, &policy, at(now)))
                    .expect("accept_part");
                if key.2 > policy.max_parts {
                    assert_eq!(got, PartOutcome::Refused);
                    continue;
                }
                if model.done.get(&key).is_some_and(|&d| now - d < WINDOW_MS) {
                    assert_eq!(got, PartOutcome::Duplicate, "a copy of a finished message");
                    continue;
                }
                let segs = model.buffers.entry(key).or_default();
                segs.insert(seq, (dc, body, now));
                if segs.len() < usize::from(key.2) {
                    assert_eq!(
                        got,
                        PartOutcome::Buffered,
                        "{} of {} segments",
                        segs.len(),
                        key.2
                    );
                    continue;
                }
                let want = expected_text(segs);
                model.buffers.remove(&key);
                model.done.insert(key, now);
                match got {
                    PartOutcome::Completed(Accepted::Stored(id)) => {
                        let mo = inbound::get(&store, id).expect("read").expect("stored MO");
                        assert_eq!(mo.text, want);
                        assert_eq!((mo.parts, mo.complete), (key.2, true));
                        assert_eq!(mo.from, SENDERS[key.0]);
                    }
                    PartOutcome::Completed(Accepted::Duplicate(_)) => {}
                    other => panic!("last segment gave {other:?}"),
                }
            }
        }
    }
    // Nothing is kept forever: one sweep past every timeout empties the buffers.
    now += TIMEOUT_MS + 1;
    let n = rt
        .block_on(sweep(&store, tpl, &policy, at(now)))
        .expect("final sweep");
    assert_eq!(n, model.buffers.len());
    assert!(
        store.aux_scan("sms.mo.part", b"").expect("scan").is_empty(),
        "segment buffers left after the final sweep"
    );
});
