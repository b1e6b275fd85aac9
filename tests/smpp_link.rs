//! The SMPP link under failure, against a real peer (npm `smpp` 0.5.1): the SMSC drops
//! the connection mid-window, unbinds, restarts; the server is killed with -9 while
//! 10,000 SMS are queued. Nothing is lost; duplicates stay within the documented bound
//! (window × binds: the entries claimed and not yet durably acknowledged). And USSD over
//! SMPP, a full journey.

mod common;
mod smsc;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::Server;
use imis_gateway::domain::{Language, Msisdn};
use imis_gateway::sms::{enqueue, OutboundSms};
use imis_gateway::store::{Store, StoreOptions, TxResult};
use serde_json::json;
use smsc::Smsc;

fn queue(dir: &Path, n: usize) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        store
            .write(|tx| -> TxResult<()> {
                for k in i..end {
                    let sms = OutboundSms {
                        to: Msisdn::parse(&format!("2557{:08}", k % 100_000_000)).unwrap(),
                        text: format!("msg-{k}"),
                        template: "test".into(),
                        language: Language::Sw,
                        reference: k.to_string(),
                    };
                    enqueue(tx, &format!("load:{k}"), &sms)?;
                }
                Ok(())
            })
            .unwrap();
        i = end;
    }
    store.flush().unwrap();
}

fn start(dir: &Path, smsc: &Smsc, extra: &[(&str, &str)]) -> Server {
    let mut env = smsc.gateway_env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(dir, &[], &env)
}

/// Accepted submit_sm per text.
fn counts(smsc: &Smsc) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for s in smsc.submits() {
        *m.entry(s["text"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

fn duplicates(c: &HashMap<String, usize>) -> usize {
    c.values().map(|n| n - 1).sum()
}

#[test]
fn a_connection_dropped_mid_window_loses_nothing_and_unbind_and_restart_rebind() {
    let smsc = Smsc::start(&[]);
    // Slow responses keep the window full when the connection drops.
    smsc.config(json!({"resp_delay_ms": 150}));
    let dir = tempfile::tempdir().unwrap();
    queue(dir.path(), 60);
    let window = 5;
    let server = start(
        dir.path(),
        &smsc,
        &[
            ("IMIS_GATEWAY_SMPP__WINDOW", "5"),
            ("IMIS_GATEWAY_SMPP__TPS", "1000"),
        ],
    );
    smsc.wait("some submits", Duration::from_secs(20), |s| {
        s.stats()["submit_sm"].as_u64() >= Some(10)
    });
    assert!(
        smsc.stats()["max_outstanding"].as_u64() <= Some(window),
        "window respected"
    );
    smsc.drop_sessions();
    smsc.wait("rebind", Duration::from_secs(20), |s| {
        s.stats()["binds"] == 2 && s.bound() == 1
    });
    smsc.wait("all 60", Duration::from_secs(30), |s| counts(s).len() == 60);
    let c = counts(&smsc);
    assert!(
        duplicates(&c) <= window as usize,
        "duplicates {} > window",
        duplicates(&c)
    );

    // The SMSC unbinds: the ESME answers and binds again.
    smsc.unbind_sessions();
    smsc.wait("rebind after unbind", Duration::from_secs(20), |s| {
        s.stats()["binds"] == 3 && s.bound() == 1
    });

    // The SMSC restarts on the same port: the ESME reconnects with backoff.
    let port = smsc.smpp_port;
    smsc.kill();
    std::thread::sleep(Duration::from_millis(500));
    let smsc = Smsc::start_on(port, &[]);
    smsc.wait("rebind after restart", Duration::from_secs(30), |s| {
        s.bound() == 1
    });
    let (_, h) = smsc::http(server.addr.port(), "GET", "/health", None);
    assert!(h["smpp"]["counters"]["rebinds"].as_u64() >= Some(3), "{h}");
    assert!(h["smpp"]["counters"]["requeued"].as_u64() >= Some(1), "{h}");
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.pending_count("sms").unwrap(), 0);
}

#[test]
fn kill_9_with_10000_queued_loses_nothing_and_duplicates_stay_within_the_window() {
    let started = std::time::Instant::now();
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let n = 10_000;
    queue(dir.path(), n);
    let env = [
        ("IMIS_GATEWAY_SMPP__WINDOW", "10"),
        ("IMIS_GATEWAY_SMPP__TPS", "20000"),
        ("IMIS_GATEWAY_SMPP__REGISTERED_DELIVERY", "false"),
    ];
    let server = start(dir.path(), &smsc, &env);
    smsc.wait("3000 submitted", Duration::from_secs(120), |s| {
        s.stats()["submit_sm"].as_u64() >= Some(3000)
    });
    server.kill9();
    let before = smsc.stats()["submit_sm"].as_u64().unwrap_or(0);
    assert!(before < n as u64, "killed mid-drain ({before} of {n})");
    let server = start(dir.path(), &smsc, &env);
    // Polls a counter, not the list of 10,000 submits.
    smsc.wait("all 10000", Duration::from_secs(180), |s| {
        s.stats()["distinct_texts"].as_u64() >= Some(n as u64)
    });
    let (st, _) = server.terminate();
    assert!(st.success());
    let c = counts(&smsc);
    assert_eq!(c.len(), n, "every message reached the SMSC");
    let dups = duplicates(&c);
    // Bound: the entries claimed and not durably acked when the process died, at most
    // window × binds = 10.
    assert!(dups <= 10, "{dups} duplicates");
    eprintln!(
        "kill -9 after {before} submits: {dups} duplicates; {:?} in all",
        started.elapsed()
    );
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.pending_count("sms").unwrap(), 0);
}

#[test]
fn ussd_over_smpp_full_journey() {
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &smsc, &[]);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    let msisdn = "255754100001";
    // The middle hop comes as data_sm, as some operators' USSD gateways send it.
    let hop = |op: u8, text: &str, n: usize| {
        let command = if n == 2 { "data_sm" } else { "deliver_sm" };
        smsc.mo(
            json!({"command": command, "from": msisdn, "to": "*152*00#", "text": text,
                       "ussd_service_op": op, "its_session_info": [7, 0]}),
        );
        smsc.wait("USSD reply", Duration::from_secs(10), |s| {
            s.submits().len() >= n
        });
        smsc.submits()[n - 1].clone()
    };
    let home = hop(1, "*152*00#", 1);
    assert_eq!(home["ussd_service_op"], 2, "continue: {home}");
    assert_eq!(home["its_session_info"], json!([7, 0]));
    assert_eq!(home["to"], msisdn);
    assert!(
        home["text"].as_str().unwrap().contains("Karibu CHF"),
        "{home}"
    );
    let lang = hop(18, "4", 2);
    assert_eq!(lang["ussd_service_op"], 2);
    assert!(
        lang["text"].as_str().unwrap().contains("Chagua lugha"),
        "{lang}"
    );
    let done = hop(18, "2", 3);
    assert_eq!(done["ussd_service_op"], 17, "end: {done}");
    assert_eq!(
        done["its_session_info"],
        json!([7, 1]),
        "end-of-session bit"
    );
    assert!(done["text"].as_str().unwrap().contains("English"), "{done}");
    assert_eq!(smsc.stats()["mo_resp_status"], json!([0, 0, 0]));
    assert_eq!(
        smsc.stats()["data_sm_resp"],
        1,
        "data_sm answered with data_sm_resp"
    );
    let (st, _) = server.terminate();
    assert!(st.success());
}
