//! The SMPP cases that matter, against TWO independent SMSC implementations over TCP
//! (issue 15): the npm `smpp` 0.5.1 peer (tests/smsc) and a Python peer on PyPI's
//! `smpplib` 2.2.4 (tests/smsc2). Each case runs against both: MO (stored, acknowledged,
//! answered), multipart MO out of order, MT with its delivery receipt, a USSD dial (one
//! hop) and a deliver_sm with one bad field (its own response with the field's status).

mod common;
mod smsc;
mod smsc2;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Server;
use imis_gateway::domain::{Language, Msisdn};
use imis_gateway::sms::status::{self, SmsState};
use imis_gateway::sms::{enqueue, inbound, OutboundSms};
use imis_gateway::store::{Store, StoreOptions, TxResult};
use serde_json::{json, Value};

/// What a case needs from an SMSC peer.
trait Peer {
    /// Which implementation, and its SMPP port.
    fn info(&self) -> (&'static str, u16);
    fn name(&self) -> &'static str {
        self.info().0
    }
    fn mo(&self, mo: Value) -> u64;
    fn submits(&self) -> Vec<Value>;
    fn bound(&self) -> u64;
    /// command_status of every deliver_sm_resp the gateway sent, in order (receipts too).
    fn deliver_sm_resp_statuses(&self) -> Vec<u64>;
    /// command_status of the gateway's responses to the MO sent with [`Peer::mo`].
    fn mo_resp_statuses(&self) -> Vec<u64>;
    fn raw(&self, hex: &str) -> u64;
}

impl Peer for smsc::Smsc {
    fn info(&self) -> (&'static str, u16) {
        ("npm smpp", self.smpp_port)
    }
    fn mo(&self, mo: Value) -> u64 {
        smsc::Smsc::mo(self, mo)
    }
    fn submits(&self) -> Vec<Value> {
        smsc::Smsc::submits(self)
    }
    fn bound(&self) -> u64 {
        smsc::Smsc::bound(self)
    }
    fn deliver_sm_resp_statuses(&self) -> Vec<u64> {
        numbers(&self.stats()["deliver_sm_resp_status"])
    }
    fn mo_resp_statuses(&self) -> Vec<u64> {
        numbers(&self.stats()["mo_resp_status"])
    }
    fn raw(&self, hex: &str) -> u64 {
        smsc::Smsc::raw(self, hex)
    }
}

impl Peer for smsc2::PySmsc {
    fn bound(&self) -> u64 {
        self.get("/stats")["bound"].as_u64().unwrap_or(0)
    }
    fn submits(&self) -> Vec<Value> {
        self.get("/submits").as_array().cloned().unwrap_or_default()
    }
    fn deliver_sm_resp_statuses(&self) -> Vec<u64> {
        self.responses(0x8000_0005).iter().map(|r| r.1).collect()
    }
    fn mo_resp_statuses(&self) -> Vec<u64> {
        numbers(&self.get("/stats")["mo_resp_status"])
    }
    fn info(&self) -> (&'static str, u16) {
        ("python smpplib", self.smpp_port)
    }
    fn mo(&self, mo: Value) -> u64 {
        let r = self.post("/mo", &mo);
        r["delivered_to_sessions"].as_u64().unwrap_or(0)
    }
    fn raw(&self, hex: &str) -> u64 {
        let r = self.post("/raw", &json!({ "hex": hex }));
        r["written_to_sessions"].as_u64().unwrap_or(0)
    }
}

trait Responses {
    /// (sequence number, status) of the gateway's responses with `command_id`.
    fn responses(&self, command_id: u64) -> Vec<(u64, u64)>;
}

impl Responses for smsc2::PySmsc {
    fn responses(&self, command_id: u64) -> Vec<(u64, u64)> {
        let all = self.get("/stats")["responses"].clone();
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["command_id"].as_u64() == Some(command_id))
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap_or(0),
                    r["status"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

/// Both peers, each with a fresh data directory for its gateway.
fn peers() -> Vec<(Box<dyn Peer>, tempfile::TempDir)> {
    let both: [Box<dyn Peer>; 2] = [
        Box::new(smsc::Smsc::start(&[])),
        Box::new(smsc2::PySmsc::start()),
    ];
    both.into_iter()
        .map(|p| (p, tempfile::tempdir().unwrap()))
        .collect()
}

fn serve(dir: &Path, peer: &dyn Peer) -> Server {
    let port = peer.info().1.to_string();
    let env = [
        ("ENABLED", "true"),
        ("HOST", "127.0.0.1"),
        ("PORT", port.as_str()),
        ("SYSTEM_ID", "esme"),
        ("PASSWORD", "secret"),
        ("RECONNECT_MIN_MS", "100"),
        ("RESPONSE_TIMEOUT_SECS", "3"),
    ]
    .map(|(k, v)| (format!("IMIS_GATEWAY_SMPP__{k}"), v.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(dir, &[], &env);
    wait(peer, "bound", || peer.bound() == 1);
    server
}

fn wait(peer: &dyn Peer, what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}: timed out waiting for {what}",
            peer.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn to(peer: &dyn Peer, msisdn: &str) -> Vec<Value> {
    let all = peer.submits();
    all.into_iter().filter(|s| s["to"] == msisdn).collect()
}

/// Officer-style MO: one part, and two UDH parts out of order.
#[test]
fn mo_single_and_multipart_are_stored_acknowledged_and_answered_on_both_peers() {
    for (peer, dir) in peers() {
        let (peer, server) = (&*peer, serve(dir.path(), &*peer));
        let (one, two) = ("255754000031", "255754000032");
        assert_eq!(peer.mo(json!({"from": one, "text": "HELP"})), 1);
        // Two UDH parts, reference 0x33, the second one first.
        peer.mo(json!({"from": two, "text": "Kibera familia 5", "udh": "050003330202"}));
        peer.mo(json!({"from": two, "text": "REG 070707070 ", "udh": "050003330201"}));
        // Receipts of the replies are acknowledged too: count the MO's responses only.
        wait(peer, "3 deliver_sm_resp", || {
            peer.mo_resp_statuses().len() == 3
        });
        assert_eq!(peer.mo_resp_statuses(), [0, 0, 0], "{}", peer.name());
        wait(peer, "both replies", || {
            !to(peer, one).is_empty() && !to(peer, two).is_empty()
        });
        let help = to(peer, one)[0]["text"].as_str().unwrap_or("").to_string();
        assert!(help.starts_with("CHF: Piga"), "{}: {help}", peer.name());
        let (st, _) = server.terminate();
        assert!(st.success());
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut mos = Vec::new();
        for m in inbound::all(&store).unwrap() {
            mos.push((m.text, m.parts));
        }
        mos.sort();
        assert_eq!(
            mos,
            [
                ("HELP".to_string(), 1),
                ("REG 070707070 Kibera familia 5".to_string(), 2)
            ],
            "{}",
            peer.name()
        );
    }
}

/// MT: the outbox drained into submit_sm, the receipt correlated.
#[test]
fn mt_is_submitted_once_and_its_receipt_marks_it_delivered_on_both_peers() {
    for (peer, dir) in peers() {
        let peer = &*peer;
        let seq = {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            let sms = OutboundSms {
                to: Msisdn::parse("255754000041").unwrap(),
                text: "Malipo yamepokelewa".into(),
                template: "test".into(),
                language: Language::Sw,
                reference: "peers".into(),
            };
            let seq = store
                .write(|tx| -> TxResult<u64> { Ok(enqueue(tx, "peers:mt", &sms)?) })
                .unwrap();
            store.flush().unwrap();
            seq
        };
        let server = serve(dir.path(), peer);
        wait(peer, "the submit_sm", || !peer.submits().is_empty());
        let sent = peer.submits();
        assert_eq!(sent.len(), 1, "{}", peer.name());
        assert_eq!(sent[0]["text"], "Malipo yamepokelewa", "{}", peer.name());
        assert_eq!(sent[0]["esm_class"], 0, "{}", peer.name());
        // The receipt (a deliver_sm with esm_class 0x04) is acknowledged.
        wait(peer, "the receipt's deliver_sm_resp", || {
            peer.deliver_sm_resp_statuses() == [0]
        });
        std::thread::sleep(Duration::from_millis(300));
        let (st, _) = server.terminate();
        assert!(st.success());
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let state = status::get(&store, seq).unwrap().expect("status").state;
        assert_eq!(state, SmsState::Delivered, "{}", peer.name());
    }
}

/// USSD over SMPP, the dial only (the whole walk is tests/smpp_link.rs on the npm peer).
#[test]
fn a_ussd_dial_is_answered_with_the_first_screen_on_both_peers() {
    for (peer, dir) in peers() {
        let (peer, server) = (&*peer, serve(dir.path(), &*peer));
        let msisdn = "255754100001";
        peer.mo(json!({"from": msisdn, "to": "*152*00#", "text": "*152*00#",
                       "ussd_service_op": 1, "its_session_info": [7, 0]}));
        wait(peer, "the USSD screen", || !to(peer, msisdn).is_empty());
        let screen = &to(peer, msisdn)[0];
        assert_eq!(screen["ussd_service_op"], 2, "{}: {screen}", peer.name());
        assert_eq!(screen["its_session_info"], json!([7, 0]), "{}", peer.name());
        let text = screen["text"].as_str().unwrap_or("");
        assert!(text.contains("Karibu CHF"), "{}: {screen}", peer.name());
        assert_eq!(peer.mo_resp_statuses(), [0], "{}", peer.name());
        let (st, _) = server.terminate();
        assert!(st.success());
    }
}

/// A well-framed deliver_sm with `src` as source_addr and `sm_length` over a 2-octet
/// short_message, as hex.
fn deliver_sm_hex(seq: u32, src: &[u8], sm_length: u8) -> String {
    let mut body = vec![0u8, 1, 1];
    body.extend(src);
    body.extend([
        0, 1, 1, b'1', b'5', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sm_length, b'H', b'I',
    ]);
    let mut f = ((16 + body.len()) as u32).to_be_bytes().to_vec();
    for word in [5, 0, seq] {
        f.extend(u32::to_be_bytes(word));
    }
    f.extend(body);
    f.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issue 15 item 5 on both peers: an overlong source_addr and a short_message longer than
/// the PDU are answered with deliver_sm_resp ESME_RINVSRCADR / ESME_RINVMSGLEN, not a
/// generic_nack; the Python peer also checks each response carries its PDU's sequence.
#[test]
fn field_errors_get_the_matching_deliver_sm_resp_on_both_peers() {
    let long_src = [vec![b'2'; 30], vec![0]].concat();
    for (peer, dir) in peers() {
        let (peer, server) = (&*peer, serve(dir.path(), &*peer));
        assert_eq!(peer.raw(&deliver_sm_hex(0x7001, &long_src, 2)), 1);
        assert_eq!(peer.raw(&deliver_sm_hex(0x7002, b"255754000051\0", 9)), 1);
        wait(peer, "2 deliver_sm_resp", || {
            peer.deliver_sm_resp_statuses().len() >= 2
        });
        // Nothing else was delivered before them (no MO, no submit yet).
        assert_eq!(
            peer.deliver_sm_resp_statuses(),
            [0x0A, 0x01],
            "{}",
            peer.name()
        );
        // The bind stayed up and still takes MO.
        peer.mo(json!({"from": "255754000052", "text": "HELP"}));
        wait(peer, "the MO's resp", || peer.mo_resp_statuses() == [0]);
        assert_eq!(peer.bound(), 1);
        let (st, _) = server.terminate();
        assert!(st.success());
    }
    let py = smsc2::PySmsc::start();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &py);
    py.raw(&deliver_sm_hex(0x7003, &long_src, 2));
    wait(&py, "the resp", || !py.responses(0x8000_0005).is_empty());
    assert_eq!(py.responses(0x8000_0005), [(0x7003, 0x0A)]);
    assert!(py.responses(0x8000_0000).is_empty(), "no generic_nack");
    let (st, _) = server.terminate();
    assert!(st.success());
}
