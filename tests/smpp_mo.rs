//! MO over SMPP and HTTP against a real peer (npm `smpp` 0.5.1): stored durably, then
//! acknowledged, then answered with HELP once; multipart reassembly (UDH and SAR);
//! decoding by data_coding; a deliver_sm with a bad field gets its status, an unknown
//! command a generic_nack, and the bind stays up.

mod common;
mod smsc;

use std::path::Path;
use std::time::Duration;

use common::Server;
use imis_gateway::sms::inbound;
use imis_gateway::store::{Store, StoreOptions};
use serde_json::{json, Value};
use smsc::Smsc;

fn start(dir: &Path, smsc: &Smsc) -> Server {
    let env = smsc.gateway_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(dir, &[], &env)
}

fn replies_to(smsc: &Smsc, to: &str) -> Vec<Value> {
    smsc.submits()
        .into_iter()
        .filter(|s| s["to"] == to)
        .collect()
}

fn stored(dir: &Path) -> Vec<inbound::StoredMo> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    inbound::all(&store).unwrap()
}

#[test]
fn an_mo_is_stored_then_acknowledged_then_answered_with_help_once() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &smsc);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    let from = "255754000001"; // the demo officer's phone would be, here: an unknown sender
    assert_eq!(
        smsc.mo(json!({"from": from, "to": "15200", "text": "REG 12345 Kongwa"})),
        1
    );
    smsc.wait("deliver_sm_resp", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 1
    });
    assert_eq!(smsc.stats()["mo_resp_status"], json!([0]));
    smsc.wait("HELP reply", Duration::from_secs(10), |s| {
        !replies_to(s, from).is_empty()
    });
    let reply = &replies_to(&smsc, from)[0];
    assert!(
        reply["text"].as_str().unwrap().starts_with("CHF: Piga"),
        "{reply}"
    );

    // The SMSC redelivers the same MO (as after a lost deliver_sm_resp): acknowledged,
    // not stored twice, no second reply.
    smsc.mo(json!({"from": from, "to": "15200", "text": "REG 12345 Kongwa"}));
    smsc.wait("second resp", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 2
    });
    // UCS2 with a surrogate pair, and Latin-1.
    smsc.mo(
        json!({"from": "255754000002", "to": "15200", "text": "Habari 😀 ✓", "data_coding": 8}),
    );
    smsc.mo(json!({"from": "255754000003", "to": "15200", "text": "José", "data_coding": 3}));
    smsc.wait("4 resps", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 4
    });
    smsc.wait("3 replies", Duration::from_secs(10), |s| {
        s.submits().len() == 3
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(replies_to(&smsc, from).len(), 1, "one reply per MO");
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));

    let mut texts: Vec<String> = stored(dir.path()).into_iter().map(|m| m.text).collect();
    texts.sort();
    assert_eq!(texts, vec!["Habari 😀 ✓", "José", "REG 12345 Kongwa"]);
}

#[test]
fn multipart_mo_is_reassembled_from_udh_and_from_sar_tlvs() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &smsc);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    let from = "255754000007";
    // UDH, 8-bit reference 0x2A, 2 parts, second part first.
    smsc.mo(json!({"from": from, "text": "Kibera familia 5", "udh": "0500032a0202"}));
    smsc.mo(json!({"from": from, "text": "REG 070707070 ", "udh": "0500032a0201"}));
    // SAR TLVs, 16-bit reference, 3 parts.
    for (i, t) in ["RENEW ", "100000025 ", "CHF01"].iter().enumerate() {
        smsc.mo(json!({"from": from, "text": t, "extra": {
            "sar_msg_ref_num": 700, "sar_total_segments": 3, "sar_segment_seqnum": i + 1
        }}));
    }
    smsc.wait("5 resps", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 5
    });
    assert_eq!(smsc.stats()["mo_resp_status"], json!([0, 0, 0, 0, 0]));
    smsc.wait("2 replies", Duration::from_secs(10), |s| {
        replies_to(s, from).len() == 2
    });
    let (st, _) = server.terminate();
    assert!(st.success());
    let mut mos: Vec<(String, u8)> = stored(dir.path())
        .into_iter()
        .map(|m| (m.text, m.parts))
        .collect();
    mos.sort();
    assert_eq!(
        mos,
        vec![
            ("REG 070707070 Kibera familia 5".to_string(), 2),
            ("RENEW 100000025 CHF01".to_string(), 3)
        ]
    );
}

/// A frame with `command_id`, sequence number `seq` and `body`, as hex for `/raw`.
fn raw_pdu(command_id: u32, seq: u32, body: &[u8]) -> String {
    let mut f = ((16 + body.len()) as u32).to_be_bytes().to_vec();
    f.extend(command_id.to_be_bytes());
    f.extend(0u32.to_be_bytes());
    f.extend(seq.to_be_bytes());
    f.extend(body);
    f.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deliver_sm whose source_addr is 30 octets (the limit is 21): rusmpp cannot decode it.
fn bad_deliver_sm(seq: u32) -> String {
    let mut body = vec![0u8, 0, 0];
    body.extend(std::iter::repeat_n(b'1', 30));
    body.extend([0, 0, 0, b'1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    raw_pdu(5, seq, &body)
}

/// Issue 15 item 5 (the behaviour changed: this PDU used to get generic_nack
/// ESME_RINVCMDLEN): a well-framed deliver_sm with one bad field gets its own
/// deliver_sm_resp with the field's status; only what cannot be framed or is not a known
/// command gets generic_nack; the bind stays up throughout.
#[test]
fn a_bad_field_gets_its_status_an_unknown_command_a_generic_nack_and_the_bind_stays_up() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &smsc);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    assert_eq!(smsc.raw(&bad_deliver_sm(0x1234)), 1);
    smsc.wait("deliver_sm_resp", Duration::from_secs(10), |s| {
        s.stats()["deliver_sm_resp"] == 1
    });
    // ESME_RINVSRCADR.
    assert_eq!(smsc.stats()["deliver_sm_resp_status"], json!([0x0A]));
    assert_eq!(smsc.stats()["generic_nack"], 0);
    // A command id SMPP does not define: generic_nack ESME_RINVCMDID with its sequence.
    assert_eq!(smsc.raw(&raw_pdu(0x0000_0077, 0x1235, &[])), 1);
    smsc.wait("generic_nack", Duration::from_secs(10), |s| {
        s.stats()["generic_nack"] == 1
    });
    assert_eq!(smsc.stats()["generic_nack_seq"], json!([0x1235]));
    // Same session: an MO still goes through, no rebind happened.
    smsc.mo(json!({"from": "255754000009", "text": "HELP"}));
    smsc.wait("resp", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 1
    });
    let stats = smsc.stats();
    assert_eq!(
        (stats["binds"].as_u64(), stats["sessions"].as_u64()),
        (Some(1), Some(1))
    );
    let (st, _) = server.terminate();
    assert!(st.success());
}

#[test]
fn http_inbound_stores_before_200_dedupes_by_id_and_explains_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.addr.port();
    let post = |body: &str, ct: &str| common::sms::inbound_raw(port, ct, body);
    let ok = r#"{"from":"0754000001","to":"15200","text":"REG 1","id":"agg-1"}"#;
    let (code, body) = post(ok, "application/json");
    assert_eq!(code, 200, "{body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["duplicate"], false);
    let (code, body) = post(ok, "application/json");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, &again["duplicate"], &again["mo_id"]),
        (200, &json!(true), &first["mo_id"])
    );
    let (code, _) = post(
        "from=255754000002&to=15200&text=HELP+me&id=agg-2",
        "application/x-www-form-urlencoded",
    );
    assert_eq!(code, 200);
    for (bad, needle) in [
        ("{not json", "JSON"),
        (r#"{"from":"0754000001","to":"1","text":"x"}"#, "required"),
        (r#"{"from":"hello","to":"1","text":"x","id":"3"}"#, "from"),
        (r#"[1,2]"#, "object"),
    ] {
        let (code, body) = post(bad, "application/json");
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains(needle), "{bad}: {body}");
    }
    let (st, _) = server.terminate();
    assert!(st.success());
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mos = inbound::all(&store).unwrap();
    assert_eq!(mos.len(), 2);
    assert_eq!(mos[1].text, "HELP me");
    assert_eq!(
        store.pending_count("sms").unwrap(),
        2,
        "one HELP reply each"
    );
}

#[test]
fn tx_rx_mode_receives_on_the_receiver_replies_on_the_transmitter_and_keeps_both_alive() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut env = smsc.gateway_env();
    env.push(("IMIS_GATEWAY_SMPP__BIND_MODE".into(), "tx_rx".into()));
    env.push(("IMIS_GATEWAY_SMPP__ENQUIRE_LINK_SECS".into(), "1".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(dir.path(), &[], &env);
    smsc.wait("two binds", Duration::from_secs(20), |s| s.bound() == 2);
    let mut cmds: Vec<String> = smsc.stats()["bind_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    cmds.sort();
    assert_eq!(cmds, ["bind_receiver", "bind_transmitter"]);
    let from = "255754000011";
    assert_eq!(
        smsc.mo(json!({"from": from, "text": "HELP"})),
        1,
        "one receiver"
    );
    smsc.wait("resp", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 1
    });
    smsc.wait("HELP reply", Duration::from_secs(10), |s| {
        replies_to(s, from).len() == 1
    });
    // A submit on the receiver would have been refused with ESME_RINVBNDSTS.
    assert_eq!(smsc.stats()["submit_sm"], 1);
    // Keepalive both ways: each bind sends enquire_link every second and answers the SMSC's.
    smsc.wait("our enquire_links", Duration::from_secs(10), |s| {
        s.stats()["enquire_link"].as_u64() >= Some(2)
    });
    smsc.enquire_link();
    smsc.wait("enquire_link_resp", Duration::from_secs(10), |s| {
        s.stats()["enquire_link_resp"] == 2
    });
    assert_eq!(smsc.bound(), 2, "no rebind");
    let (st, _) = server.terminate();
    assert!(st.success());
    assert_eq!(stored(dir.path()).len(), 1);
}
