//! Officers and inbound SMS under attack and under crash, against the real server binary
//! (issue 14: lockout, STATUS, PINs at rest; issue 15 item 4: a resend gets the same reply).
//! MO in over `POST /sms/inbound` (all through [`post_inbound`]) and over SMPP from the npm
//! SMSC peer; replies read back from the peer as submit_sm.
//!
//! - Five wrong PINs: the officer's phone gets the lockout SMS; the right PIN is refused
//!   while locked; the next lockout in a row lasts twice as long; `auth::unlock` (what
//!   `officer unlock` runs) lifts it and starts the back-off over.
//! - STATUS carries no PIN, so it shows no names.
//! - PINs never reach the disk: commands over both channels, `kill -9` mid-stream, restart:
//!   no file of the data directory holds any PIN used (right, wrong or new).
//! - A person's resend after the redelivery window gets the same reply again, no second
//!   effect; an SMSC redelivery inside it gets nothing.

mod common;
mod smsc;

use std::path::Path;
use std::time::{Duration, Instant};

use common::officer::seeded_dir;
use common::Server;
use imis_gateway::domain::Msisdn;
use imis_gateway::officer::auth;
use imis_gateway::store::{Store, StoreOptions};
use serde_json::json;
use smsc::Smsc;

/// EO0002 (English), Mpwapwa villages.
const EO2: &str = "255754000002";
/// EO0001 (Kiswahili), Kongwa villages.
const EO1: &str = "255754000001";

fn start(dir: &Path, smsc: &Smsc, extra_env: &[(&str, &str)]) -> Server {
    let env = smsc.gateway_env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra_env);
    let server = Server::start(dir, &[], &env);
    smsc.wait("bound", Duration::from_secs(20), |s| s.bound() == 1);
    server
}

/// THE one way these tests post an inbound SMS over HTTP (any header the route comes to
/// require is added here). Returns the status and the answer.
fn post_inbound(server: &Server, from: &str, text: &str, id: &str) -> (u16, String) {
    let body = json!({"from": from, "to": "15200", "text": text, "id": id}).to_string();
    common::sms::inbound_raw(server.addr.port(), "application/json", &body)
}

/// Texts the SMSC received for `to`, in order.
fn replies_to(smsc: &Smsc, to: &str) -> Vec<String> {
    common::sms::texts_to(&smsc.submits(), to)
}

/// Waits until `to` has received `n` SMS in all; returns them.
fn wait_replies(smsc: &Smsc, to: &str, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let got = replies_to(smsc, to);
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{to} got {} SMS, not {n}: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `text` over HTTP and returns the one reply it gets.
fn ask(server: &Server, smsc: &Smsc, from: &str, text: &str, id: &str) -> String {
    let before = replies_to(smsc, from).len();
    let (code, answer) = post_inbound(server, from, text, id);
    assert_eq!(code, 200, "{answer}");
    let got = wait_replies(smsc, from, before + 1);
    got[before].clone()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn officer_id(store: &Store, phone: &str) -> u64 {
    store
        .officer_by_phone(&Msisdn::parse(phone).unwrap())
        .unwrap()
        .unwrap()
        .id
}

/// Minutes from now to the officer's lock expiry, as stored.
fn locked_minutes(store: &Store, officer: u64) -> i64 {
    let until = auth::pin_state(store, officer)
        .unwrap()
        .locked_until_ms
        .expect("locked");
    (until - chrono::Utc::now().timestamp_millis()) / 60_000
}

#[test]
fn a_lockout_is_told_to_the_officer_backs_off_in_a_row_and_an_administrator_lifts_it() {
    let dir = seeded_dir();
    let smsc = Smsc::start(&[]);
    let server = start(dir.path(), &smsc, &[]);
    for i in 1..=4 {
        let r = ask(
            &server,
            &smsc,
            EO2,
            &format!("RENEW 900{i} 100000014"),
            &format!("w{i}"),
        );
        assert!(r.contains("tries left"), "{r}");
    }
    // The fifth wrong PIN: the reply to the officer's phone is the lockout SMS.
    let r = ask(&server, &smsc, EO2, "RENEW 9005 100000014", "w5");
    assert!(
        r.contains("EO0002 is locked until") && r.contains("If this was not you, call"),
        "{r}"
    );
    // Locked: the right PIN is refused.
    let r = ask(&server, &smsc, EO2, "RENEW 1234 100000014", "right-1");
    assert!(r.contains("locked"), "{r}");
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));

    // 30 minutes, the first of the streak. Then the lock runs out (as if 30 min passed).
    let store = open(dir.path());
    let eo2 = officer_id(&store, EO2);
    assert!((29..=30).contains(&locked_minutes(&store, eo2)));
    assert_eq!(auth::streak(&store, eo2).unwrap(), 1);
    expire_lock(&store, eo2);
    drop(store);

    // The next streak of five wrong PINs locks for twice as long.
    let server = start(dir.path(), &smsc, &[]);
    for i in 1..=5 {
        ask(
            &server,
            &smsc,
            EO2,
            &format!("RENEW 800{i} 100000014"),
            &format!("v{i}"),
        );
    }
    let last = replies_to(&smsc, EO2).pop().unwrap();
    assert!(last.contains("If this was not you"), "{last}");
    let (st, _) = server.terminate();
    assert!(st.success());
    let store = open(dir.path());
    assert!((59..=60).contains(&locked_minutes(&store, eo2)));
    assert_eq!(auth::streak(&store, eo2).unwrap(), 2);

    // The administrator's unlock (what `officer unlock` runs) lifts it and ends the streak.
    assert_eq!(auth::unlock(&store, "EO0002").unwrap(), Some(true));
    assert_eq!(
        auth::pin_state(&store, eo2).unwrap(),
        auth::PinState::default()
    );
    assert_eq!(auth::streak(&store, eo2).unwrap(), 0);
    assert_eq!(auth::unlock(&store, "EO9999").unwrap(), None);
    drop(store);
    let server = start(dir.path(), &smsc, &[]);
    let r = ask(&server, &smsc, EO2, "RENEW 1234 100000014", "right-2");
    assert!(!r.contains("locked") && !r.contains("Wrong PIN"), "{r}");
    // A right PIN ends a streak too: five wrong ones now lock for 30 minutes again.
    for i in 1..=5 {
        ask(
            &server,
            &smsc,
            EO2,
            &format!("RENEW 700{i} 100000014"),
            &format!("u{i}"),
        );
    }
    let (st, _) = server.terminate();
    assert!(st.success());
    let store = open(dir.path());
    assert!((29..=30).contains(&locked_minutes(&store, eo2)));
}

/// Moves officer `id`'s lock expiry into the past, as if the lockout had run its course.
fn expire_lock(store: &Store, id: u64) {
    let state = auth::PinState {
        failures: 0,
        locked_until_ms: Some(chrono::Utc::now().timestamp_millis() - 1000),
    };
    let value = imis_gateway::store::codec::encode(&state).unwrap();
    store
        .aux_put(auth::NS_PIN, &id.to_be_bytes(), &value)
        .unwrap();
    store.flush().unwrap();
}

#[test]
fn status_carries_no_pin_so_it_shows_no_names() {
    let dir = seeded_dir();
    let smsc = Smsc::start(&[]);
    let server = start(dir.path(), &smsc, &[]);
    // 070707070 is Juma Hamisi's family in the demo.
    for (from, text) in [(EO2, "STATUS 070707070"), (EO1, "HALI 070707070")] {
        let r = ask(&server, &smsc, from, text, text);
        assert!(r.starts_with("070707070: CHF01"), "{r}");
        assert!(r.contains("070707070 A"), "{r}");
        assert!(!r.contains("Juma") && !r.contains("Hamisi"), "{r}");
    }
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
}

#[test]
fn no_pin_reaches_the_data_dir_even_after_a_kill_9_mid_stream() {
    // PINs nothing else in the store could spell by chance.
    const RIGHT: &str = "80417263";
    const WRONG: &str = "59263748";
    const NEW: &str = "61829374";
    let dir = seeded_dir();
    {
        let store = open(dir.path());
        auth::set_pin(&store, "EO0001", RIGHT).unwrap().unwrap();
        auth::set_pin(&store, "EO0002", RIGHT).unwrap().unwrap();
    }
    let smsc = Smsc::start(&[]);
    let server = start(dir.path(), &smsc, &[]);
    // Commands over both channels, each with a PIN: right, wrong, a PIN change.
    let texts = [
        format!("SAJILI {RIGHT} MPYA Mushi Neema Juma 12/03/1990 KE V0111"),
        format!("HUISHA {WRONG} 100000014"),
        format!("HUISHA {RIGHT} 100000025"),
        format!("SAJILI {WRONG} MPYA Kimaro Rehema 01/01/1991 KE V0111"),
        "SAJILI 12 MPYA Mushi Neema 12/03/1990 KE V0111".to_string(),
    ];
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(smsc.mo(json!({"from": EO1, "to": "15200", "text": t})), 1);
        let english = t
            .replace("SAJILI", "REG")
            .replace("HUISHA", "RENEW")
            .replace("MPYA", "NEW")
            .replace(" KE ", " F ")
            .replace("V0111", "V0211");
        let (code, a) = post_inbound(&server, EO2, &english, &format!("h{i}"));
        assert_eq!(code, 200, "{a}");
    }
    wait_replies(&smsc, EO2, texts.len());
    // Mid-stream: more commands in flight when the process dies.
    for i in 0..6 {
        let t = format!("PIN {RIGHT} {NEW} {NEW}");
        post_inbound(&server, EO2, &t, &format!("crash-{i}"));
        assert_eq!(
            smsc.mo(
                json!({"from": EO1, "to": "15200", "text": format!("HUISHA {WRONG} 10000001{i}")})
            ),
            1
        );
    }
    server.kill9();
    // Restart: what was stored runs (the officer worker, the outbox), then a clean stop.
    let server = start(dir.path(), &smsc, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
    for pin in [RIGHT, WRONG, NEW] {
        let hits = common::files_holding(dir.path(), pin.as_bytes());
        assert!(hits.is_empty(), "PIN {pin} on disk in {hits:?}");
        assert!(
            !logs.iter().any(|l| l.contains(pin)),
            "PIN {pin} in the logs"
        );
    }
    // The commands did run, on masked texts: the audit trail says so.
    let store = open(dir.path());
    let trail = imis_gateway::officer::audit::of_officer(&store, officer_id(&store, EO1)).unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.ok && e.text.starts_with("SAJILI **** MPYA")),
        "{trail:#?}"
    );
    assert!(
        trail
            .iter()
            .any(|e| !e.ok && e.text.starts_with("HUISHA **** ")),
        "{trail:#?}"
    );
    let stored = imis_gateway::sms::inbound::all(&store).unwrap();
    assert!(stored
        .iter()
        .all(|m| !m.text.contains(RIGHT) && !m.text.contains(WRONG)));
    assert!(stored
        .iter()
        .any(|m| m.text.starts_with("PIN **** **** ****")));
}

#[test]
fn a_resend_after_the_redelivery_window_gets_the_same_reply_and_no_second_family() {
    let dir = seeded_dir();
    let families = open(dir.path()).counts().unwrap().families;
    let smsc = Smsc::start(&[]);
    let server = start(
        dir.path(),
        &smsc,
        &[("IMIS_GATEWAY_SMPP__MO_DEDUPE_SECS", "2")],
    );
    let reg = "REG 1234 NEW Lyimo Grace 01/01/1980 F V0211";
    let send = || assert_eq!(smsc.mo(json!({"from": EO2, "to": "15200", "text": reg})), 1);
    send();
    // The SMSC delivers it again at once (its copy was not yet acknowledged, say): dropped.
    send();
    let first = wait_replies(&smsc, EO2, 1);
    assert!(first[0].contains("Grace Lyimo"), "{first:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replies_to(&smsc, EO2).len(), 1, "a redelivery was answered");
    // The officer, with no reply in sight, sends it again: the same reply, once.
    std::thread::sleep(Duration::from_secs(1));
    send();
    let both = wait_replies(&smsc, EO2, 2);
    assert_eq!(both[1], both[0]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(replies_to(&smsc, EO2).len(), 2);
    // Over HTTP the aggregator's id decides: the same id is its retry (no reply), a new id
    // the person's resend (the same reply again).
    let (code, _) = post_inbound(&server, EO2, reg, "agg-1");
    assert_eq!(code, 200);
    let third = wait_replies(&smsc, EO2, 3);
    assert_eq!(third[2], third[0]);
    let (code, a) = post_inbound(&server, EO2, reg, "agg-1");
    assert_eq!(code, 200);
    assert!(a.contains("\"duplicate\":true"), "{a}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(replies_to(&smsc, EO2).len(), 3);
    let (st, logs) = server.terminate();
    assert!(st.success(), "{}", logs.join("\n"));
    // One family more in the store, not two.
    let store = open(dir.path());
    assert_eq!(store.counts().unwrap().families, families + 1);
}
