//! MT over SMPP against a real peer (npm `smpp` 0.5.1): the server drains the durable
//! outbox into submit_sm, exactly once per entry, with GSM-7/UCS2 and concatenation,
//! honours throttling, and tracks delivery receipts to a final status.

mod common;
mod smsc;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::Server;
use imis_gateway::domain::{Language, Msisdn};
use imis_gateway::sms::status::{self, SmsState};
use imis_gateway::sms::{enqueue, OutboundSms};
use imis_gateway::store::{Store, StoreOptions, TxResult};
use serde_json::{json, Value};
use smsc::Smsc;

/// Puts SMS on the outbox of the store in `dir` (before the server opens it).
pub fn queue(dir: &Path, texts: &[(String, String)]) -> Vec<u64> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let mut seqs = Vec::new();
    for chunk in texts.chunks(500) {
        let s = store
            .write(|tx| -> TxResult<Vec<u64>> {
                let mut v = Vec::new();
                for (to, text) in chunk {
                    let sms = OutboundSms {
                        to: Msisdn::parse(to).unwrap(),
                        text: text.clone(),
                        template: "test".into(),
                        language: Language::Sw,
                        reference: text.chars().take(16).collect(),
                    };
                    v.push(enqueue(tx, &format!("test:{to}:{text}"), &sms)?);
                }
                Ok(v)
            })
            .unwrap();
        seqs.extend(s);
    }
    store.flush().unwrap();
    seqs
}

fn env_of(smsc: &Smsc, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = smsc.gateway_env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn start(dir: &Path, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(dir, &[], &env)
}

/// Texts as the peer decoded them, joined per (to, UDH reference).
fn messages(submits: &[Value]) -> Vec<(String, String, u64)> {
    let mut parts: HashMap<(String, String), Vec<(u8, String)>> = HashMap::new();
    let mut out = Vec::new();
    for s in submits {
        let to = s["to"].as_str().unwrap().to_string();
        let text = s["text"].as_str().unwrap().to_string();
        let dc = s["data_coding"].as_u64().unwrap();
        let udh = s["udh"].as_str().unwrap();
        if udh.is_empty() {
            out.push((to, text, dc));
        } else {
            // The peer lists information elements without the UDH length: 00 03 ref total seq.
            let b: Vec<u8> = (0..udh.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&udh[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(&b[..2], &[0, 3], "8-bit concatenation IE");
            let e = parts
                .entry((to.clone(), format!("{}/{}", b[2], b[3])))
                .or_default();
            e.push((b[4], text));
            if e.len() == usize::from(b[3]) {
                e.sort();
                let joined: String = e.iter().map(|(_, t)| t.as_str()).collect();
                out.push((to, joined, dc));
            }
        }
    }
    out
}

#[test]
fn mt_single_and_multipart_gsm7_and_ucs2_are_submitted_once_and_tracked_to_delivery() {
    let smsc = Smsc::start(&[("DLR_DELAY_MS", "50")]);
    let dir = tempfile::tempdir().unwrap();
    let long_gsm = format!("CHF: {} mwisho", "Habari za asubuhi {Juma}. ".repeat(14));
    let long_ucs2 = format!("Malipo ✓ {}", "Shilingi ₮ 30,000 😀 ".repeat(5));
    let texts = vec![
        (
            "255754100001".to_string(),
            "Namba ya malipo 991110000025".to_string(),
        ),
        ("255754100002".to_string(), long_gsm.clone()),
        ("255754100003".to_string(), "Asante ✓".to_string()),
        ("255754100004".to_string(), long_ucs2.clone()),
    ];
    let seqs = queue(dir.path(), &texts);
    let server = start(dir.path(), &env_of(&smsc, &[]));
    // 1 + 3 GSM parts (153 septets each) + 1 + 2 UCS2 parts (67 units each).
    smsc.wait("7 submit_sm", Duration::from_secs(30), |s| {
        s.submits().len() >= 7
    });
    let stats = smsc.stats();
    assert_eq!(
        stats["bind_versions"],
        json!([0x34]),
        "bound once, as SMPP 3.4"
    );
    assert_eq!(stats["bind_commands"], json!(["bind_transceiver"]));
    let submits = smsc.submits();
    assert_eq!(submits.len(), 7);
    for s in &submits {
        let multipart = !s["udh"].as_str().unwrap().is_empty();
        let want = if multipart { 0x40 } else { 0x00 };
        assert_eq!(s["esm_class"], json!(want), "esm_class set explicitly: {s}");
        assert_eq!(s["from"], "CHF");
        assert_eq!(s["registered_delivery"], 1);
        assert!(
            !s["validity_period"].as_str().unwrap().is_empty(),
            "validity period sent"
        );
    }
    let mut got = messages(&submits);
    got.sort();
    let mut want: Vec<(String, String, u64)> = texts
        .iter()
        .map(|(to, t)| {
            let dc = if t.contains('✓') { 8 } else { 0 };
            (to.clone(), t.clone(), dc)
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "the peer decodes exactly what was queued");

    // Receipts come back; every SMS ends delivered.
    smsc.wait("7 receipts", Duration::from_secs(20), |s| {
        s.stats()["dlr_sent"] == 7
    });
    let (port, path) = (server.addr.port(), "/health");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, h) = smsc::http(port, "GET", path, None);
        if h["smpp"]["counters"]["sms_delivered"].as_u64() >= Some(4) {
            assert_eq!(h["smpp"]["state"], "up", "{h}");
            assert_eq!(h["smpp"]["binds"][0]["kind"], "transceiver");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, metrics) = smsc::http_raw(port, "GET", "/sms/metrics", "text/plain", "");
    assert_eq!(code, 200);
    assert!(metrics.contains("imis_sms_sms_submitted 4"), "{metrics}");
    assert!(metrics.contains("imis_sms_queue_depth 0"), "{metrics}");
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
    assert!(
        logs.iter().any(|l| l.contains("unbound")),
        "unbinds on shutdown"
    );

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.pending_count("sms").unwrap(), 0);
    for seq in seqs {
        let st = status::get(&store, seq).unwrap().expect("status");
        assert_eq!(st.state, SmsState::Delivered, "{st:?}");
        assert!(!st.message_ids.is_empty());
    }
}

#[test]
fn throttling_pauses_and_retries_and_permanent_errors_fail_without_retry() {
    let smsc = Smsc::start(&[]);
    // ESME_RTHROTTLED and ESME_RMSGQFUL both pause the bind and retry the same message.
    smsc.config(
        json!({"throttle_next": 3, "throttle_status": [0x58, 0x14, 0x58],
                       "dlr_before_resp": true}),
    );
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<(String, String)> = (0..10)
        .map(|i| (format!("2557541000{i:02}"), format!("Ujumbe namba {i}")))
        .collect();
    let seqs = queue(dir.path(), &texts);
    let server = start(
        dir.path(),
        &env_of(&smsc, &[("IMIS_GATEWAY_SMPP__TPS", "200")]),
    );
    smsc.wait("10 accepted", Duration::from_secs(30), |s| {
        s.submits().len() >= 10
    });
    let stats = smsc.stats();
    assert_eq!(stats["throttled"], 3);
    assert_eq!(stats["throttle_statuses"], json!([0x58, 0x14, 0x58]));
    let (_, h) = smsc::http(server.addr.port(), "GET", "/health", None);
    assert!(
        h["smpp"]["counters"]["throttled"].as_u64() >= Some(3),
        "{h}"
    );
    assert_eq!(
        stats["submit_sm"], 13,
        "3 throttled + 10 accepted, nothing else"
    );
    let mut texts_seen: Vec<String> = smsc
        .submits()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect();
    texts_seen.sort();
    texts_seen.dedup();
    assert_eq!(texts_seen.len(), 10, "each exactly once");

    // A permanent refusal (invalid destination) fails the SMS at once; it is not retried.
    smsc.config(json!({"reject_next": 1, "reject_status": 0x0B}));
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
    let extra = queue(dir.path(), &[("255754999999".into(), "Haitafika".into())]);
    let server = start(dir.path(), &env_of(&smsc, &[]));
    smsc.wait("rejection", Duration::from_secs(20), |s| {
        s.stats()["rejected"] == 1
    });
    std::thread::sleep(Duration::from_millis(500));
    let (st, _) = server.terminate();
    assert!(st.success());
    assert_eq!(smsc.stats()["rejected"], 1, "not retried");

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.pending_count("sms").unwrap(), 0);
    let failed = status::get(&store, extra[0]).unwrap().unwrap();
    assert_eq!(failed.state, SmsState::Failed);
    assert!(failed.error.unwrap().contains("0x0000000b"));
    // Receipts sent before the submit_sm_resp still matched their SMS.
    for seq in seqs {
        assert_eq!(
            status::get(&store, seq).unwrap().unwrap().state,
            SmsState::Delivered
        );
    }
}

#[test]
fn receipts_without_tlvs_are_read_from_the_text_and_decimal_ids_meet_hex_ones() {
    let smsc = Smsc::start(&[("DLR_DELAY_MS", "20")]);
    // Receipt text only (no receipted_message_id / message_state), ids in decimal while
    // submit_sm_resp gave them in hex: ids 1..C, so 10, 11, 12 differ between the two.
    smsc.config(json!({"dlr_tlvs": false, "dlr_id_decimal": true, "dlr_stat": "UNDELIV"}));
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<(String, String)> = (0..12)
        .map(|i| (format!("2557541001{i:02}"), format!("Ujumbe {i}")))
        .collect();
    let seqs = queue(dir.path(), &texts);
    let env = env_of(
        &smsc,
        &[("IMIS_GATEWAY_SMPP__MESSAGE_ID_FORMAT", "hex_then_decimal")],
    );
    let server = start(dir.path(), &env);
    smsc.wait("12 receipts", Duration::from_secs(20), |s| {
        s.stats()["dlr_resp"] == 12
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = smsc::http(server.addr.port(), "GET", "/health", None);
        if h["smpp"]["counters"]["sms_failed"].as_u64() >= Some(12) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{h}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    for seq in seqs {
        let s = status::get(&store, seq).unwrap().unwrap();
        assert_eq!(s.state, SmsState::Failed, "UNDELIV: {s:?}");
    }
}

/// Issue 15 item 6: throttled again and again, the bind's pause doubles up to the cap
/// (jitter only shortens it, by at most a quarter), `/health` shows the pause in force and
/// the throttled count, and an accepted submit resets the pause to the first one.
#[test]
fn throttle_backoff_grows_to_the_cap_shows_in_metrics_and_resets_on_success() {
    let smsc = Smsc::start(&[]);
    smsc.config(json!({"throttle_next": 6}));
    let dir = tempfile::tempdir().unwrap();
    queue(
        dir.path(),
        &[("255754100100".into(), "Subiri kidogo".into())],
    );
    let server = start(
        dir.path(),
        &env_of(
            &smsc,
            &[
                ("IMIS_GATEWAY_SMPP__THROTTLE_PAUSE_MS", "100"),
                ("IMIS_GATEWAY_SMPP__THROTTLE_PAUSE_MAX_MS", "800"),
            ],
        ),
    );
    let health = || smsc::http(server.addr.port(), "GET", "/health", None).1;
    // While the bind backs off at the cap, the gauge says so.
    let mut seen_cap = false;
    let start = std::time::Instant::now();
    while smsc.submits().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            smsc.stats()
        );
        seen_cap |= health()["smpp"]["counters"]["throttle_pause_ms"] == 800;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen_cap, "the pause gauge reached the cap: {}", health());
    let at: Vec<i64> = smsc.stats()["throttled_at_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(at.len(), 6);
    let gaps: Vec<i64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Pauses 100, 200, 400, 800, 800 (each at least 3/4 of that): growing, then capped.
    for (gap, base) in gaps.iter().zip([100, 200, 400, 800, 800]) {
        assert!(
            *gap >= base * 3 / 4 && *gap <= base + 400,
            "gaps {gaps:?} against pauses 100, 200, 400, 800, 800"
        );
    }
    smsc.wait("accepted", Duration::from_secs(10), |s| {
        s.submits().len() == 1
    });
    let h = health();
    assert!(h["smpp"]["counters"]["throttled"] == 6, "{h}");
    // Reset by the accepted submit: the next throttle pauses for the first pause again.
    let wait_reset = std::time::Instant::now();
    while health()["smpp"]["counters"]["throttle_pause_ms"] != 0 {
        assert!(
            wait_reset.elapsed() < Duration::from_secs(5),
            "{}",
            health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
}
