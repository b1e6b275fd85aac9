//! Per-phone rate limits (`[limits]`) against the real server binary, with low limits set
//! through `IMIS_GATEWAY_LIMITS__*`:
//! - USSD over the Africa's Talking adapter: a burst of hops passes, the next ends the
//!   session with the `rate_limited` text of menus/system.toml in the phone's language,
//!   runs nothing and stores nothing (the same hop re-sent after the refill runs then);
//!   another phone is unaffected; the refusals are counted on `/metrics`.
//! - Officer SMS over `POST /sms/inbound`, replies read back from a real SMSC peer: MOs
//!   over the limit are acknowledged and kept, marked refused, get no officer reply, and
//!   the phone gets exactly one "too many messages" SMS (its language); redelivery of a
//!   refused MO adds nothing; `/sms/metrics` counts them; logs carry masked numbers only.

mod common;
mod smsc;

use std::path::Path;
use std::time::{Duration, Instant};

use common::officer::seeded_dir;
use common::ussd::{metric, Ussd};
use common::Server;
use imis_gateway::domain::Msisdn;
use imis_gateway::officer::audit;
use imis_gateway::sms::inbound;
use imis_gateway::store::{Store, StoreOptions};
use serde_json::json;
use smsc::Smsc;

const JUMA: &str = "255754100001";
const OTHER: &str = "255700000041";
const ENGLISH: &str = "255700000042";
const EO1: &str = "255754000001";
const EO2: &str = "255754000002";
const CODE: &str = "*152*00#";

/// The `rate_limited` text of the shipped menus, in `lang`.
fn menu_text(lang: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("menus/system.toml");
    let t: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    t["texts"]["rate_limited"][lang]
        .as_str()
        .unwrap()
        .to_string()
}

/// The shipped `too_many_messages` SMS template in `lang`, as rendered for `minutes`.
fn too_many_sms(lang: &str, minutes: u32) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sms-templates")
        .join(lang)
        .join("too_many_messages.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .replace("{{ minutes }}", &minutes.to_string())
}

#[test]
fn ussd_hops_over_the_limit_end_the_session_per_phone_and_come_back_after_the_refill() {
    let dir = tempfile::tempdir().unwrap();
    // 10 a minute (a token every 6 s), 3 at once.
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[
            ("IMIS_GATEWAY_LIMITS__USSD_HOPS_PER_MINUTE", "10"),
            ("IMIS_GATEWAY_LIMITS__USSD_HOP_BURST", "3"),
        ],
    );
    let u = Ussd::new(&server);
    let t0 = Instant::now();

    // Three hops pass; the fourth (the CHFID that would run the coverage lookup) is refused.
    let (end, home) = u.at("j-1", JUMA, CODE, "");
    assert!(!end && home.contains("Angalia bima"), "{home}");
    assert!(!u.at("j-1", JUMA, CODE, "1").0);
    let (end, enter) = u.at("j-1", JUMA, CODE, "1*1");
    assert!(!end, "{enter}");
    let (end, refused) = u.at("j-1", JUMA, CODE, "1*1*070707070");
    assert!(end, "a refused hop ends the session: {refused}");
    assert_eq!(refused, menu_text("sw"));
    // A new session of the same phone is refused as well: the limit is the phone's.
    let (end, again) = u.at("j-2", JUMA, CODE, "");
    assert!(end && again == menu_text("sw"), "{again}");
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "too slow for the test's refill"
    );

    // Another phone is unaffected: its own burst, then its own refusal, in its language.
    let (end, done) = u.at("e-1", ENGLISH, CODE, "4*2");
    assert!(end && done.contains("English"), "{done}");
    let (end, home) = u.at("e-2", ENGLISH, CODE, "");
    assert!(!end && home.contains("Check coverage"), "{home}");
    assert!(!u.at("e-2", ENGLISH, CODE, "1").0);
    let (end, refused_en) = u.at("e-2", ENGLISH, CODE, "1*1");
    assert!(end, "{refused_en}");
    assert_eq!(refused_en, menu_text("en"));
    let (end, other) = u.at("o-1", OTHER, CODE, "");
    assert!(!end && other.contains("Angalia bima"), "{other}");

    let m = u.metrics();
    assert_eq!(
        metric(&m, "ussd_rate_limited_total{gateway=\"africastalking\"}"),
        3,
        "{m}"
    );

    // After the refill the refused hop, sent again, runs for the first time: it was neither
    // answered from a cache nor applied when refused.
    std::thread::sleep(Duration::from_millis(6500).saturating_sub(t0.elapsed()));
    let (_, result) = u.at("j-1", JUMA, CODE, "1*1*070707070");
    assert!(result.contains("Bima ya familia ya Juma H."), "{result}");

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let lines: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("USSD hop over the per-phone rate limit"))
        .collect();
    // Three refusals, two phones: one warning per phone per window (the rest at debug).
    assert_eq!(lines.len(), 2, "{}", logs.join("\n"));
    for phone in [JUMA, ENGLISH, OTHER] {
        assert!(
            !logs.iter().any(|l| l.contains(phone)),
            "a full MSISDN in the logs"
        );
    }
}

/// Texts the SMSC received for `to`, in order (these replies are single SMS).
fn texts_to(smsc: &Smsc, to: &str) -> Vec<String> {
    smsc.submits()
        .into_iter()
        .filter(|s| s["to"] == to)
        .map(|s| s["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn post_mo(port: u16, from: &str, text: &str, id: &str) -> serde_json::Value {
    let body = json!({"from": from, "to": "15200", "text": text, "id": id}).to_string();
    let (code, resp) = common::sms::inbound_raw(port, "application/json", &body);
    assert_eq!(
        code, 200,
        "an MO over the limit is still acknowledged: {resp}"
    );
    serde_json::from_str(&resp).unwrap()
}

fn sms_metric(port: u16, name: &str) -> u64 {
    let (_, m) = smsc::http_raw(port, "GET", "/sms/metrics", "text/plain", "");
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

#[test]
fn sms_over_the_limit_is_kept_unprocessed_and_the_phone_is_told_exactly_once() {
    let dir = seeded_dir();
    let smsc = Smsc::start(&[]);
    let mut env = smsc.gateway_env();
    // 60 an hour (a token a minute: none comes back during the test), 2 at once.
    env.push(("IMIS_GATEWAY_LIMITS__SMS_MO_PER_HOUR".into(), "60".into()));
    env.push(("IMIS_GATEWAY_LIMITS__SMS_MO_BURST".into(), "2".into()));
    // No renewal digests to the officers: only replies and the notice reach their phones.
    env.push(("IMIS_GATEWAY_SCHEDULER__ENABLED".into(), "false".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(dir.path(), &[], &env);
    let port = server.addr.port();

    // EO0001 (Kiswahili): five status commands at once. Two are answered, three are kept
    // but refused, and one SMS says so.
    for i in 1..=5 {
        let r = post_mo(port, EO1, "HALI 070707070", &format!("rl-{i}"));
        assert_eq!(r["duplicate"], false, "{r}");
    }
    // EO0002 (English): three; another phone has its own allowance.
    for i in 1..=3 {
        post_mo(port, EO2, "STATUS 070707070", &format!("rl-en-{i}"));
    }
    smsc.wait("the replies", Duration::from_secs(60), |s| {
        texts_to(s, EO1).len() >= 3 && texts_to(s, EO2).len() >= 3
    });
    // A redelivered refused MO is a duplicate: acknowledged, nothing more.
    let dup = post_mo(port, EO1, "HALI 070707070", "rl-4");
    assert_eq!(dup["duplicate"], true, "{dup}");
    // Give the officer worker and the outbox time to (wrongly) send anything more.
    std::thread::sleep(Duration::from_secs(2));

    let eo1 = texts_to(&smsc, EO1);
    assert_eq!(eo1.len(), 3, "{eo1:#?}");
    // A STATUS answer (it shows CHFIDs, no names: issue 14).
    let answers = eo1.iter().filter(|t| t.starts_with("070707070:")).count();
    assert_eq!(answers, 2, "officer replies for the refused MOs: {eo1:#?}");
    let told: Vec<&String> = eo1
        .iter()
        .filter(|t| **t == too_many_sms("sw", 1))
        .collect();
    assert_eq!(told.len(), 1, "{eo1:#?}");
    let eo2 = texts_to(&smsc, EO2);
    assert_eq!(eo2.len(), 3, "{eo2:#?}");
    assert_eq!(
        eo2.iter().filter(|t| **t == too_many_sms("en", 1)).count(),
        1,
        "{eo2:#?}"
    );
    assert_eq!(sms_metric(port, "imis_sms_mo_rate_limited"), 4);

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let refusals = logs
        .iter()
        .filter(|l| l.contains("MO over the per-phone rate limit"))
        .count();
    // Four refusals from two phones: one warning per phone per window (the rest at debug).
    assert_eq!(refusals, 2, "{}", logs.join("\n"));
    assert!(
        !logs.iter().any(|l| l.contains(EO1) || l.contains(EO2)),
        "a full MSISDN in the logs"
    );

    // Every MO is in the store; exactly the refused ones are marked, and only the
    // answered ones reached the officer's audit trail.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mine: Vec<_> = inbound::all(&store)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == EO1)
        .collect();
    assert_eq!(mine.len(), 5);
    let marks: Vec<Option<bool>> = mine
        .iter()
        .map(|m| inbound::refused(&store, m.id).unwrap().map(|r| r.notified))
        .collect();
    assert_eq!(marks, [None, None, Some(true), Some(false), Some(false)]);
    let eo = store
        .officer_by_phone(&Msisdn::parse(EO1).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(audit::of_officer(&store, eo.id).unwrap().len(), 2);
}
