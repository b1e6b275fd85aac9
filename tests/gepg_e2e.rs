//! The whole loop on one machine, with real parts: a member renews over USSD and sees a
//! control number (from the pool the server filled through the GePG simulator: signed bill
//! submissions and control-number callbacks over HTTP), gets it by SMS through the SMSC peer
//! (npm `smpp`), the simulator pays it with a signed notification, the policy becomes Active
//! and the confirmation SMS reaches the SMSC. Then reconciliation finds a payment GePG never
//! notified and applies it through the same path.

mod common;
mod gepg_support;
mod smsc;

use std::time::{Duration, Instant};

use common::ussd::Ussd;
use common::Server;
use gepg_support::*;
use imis_gateway::domain::PolicyStatus;
use imis_gateway::store::Store;
use serde_json::json;
use smsc::Smsc;

const NEEMA: &str = "255754100002";
const NEEMA_CHFID: &str = "100000014";
const BARAKA_CN: &str = "991110000025";

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every text the SMSC received for `to`, joined in arrival order (parts of a long SMS
/// arrive as consecutive submits).
fn texts_to(smsc: &Smsc, to: &str) -> String {
    smsc.submits()
        .iter()
        .filter(|s| s["to"].as_str() == Some(to))
        .map(|s| s["text"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("")
}

#[test]
fn renew_by_ussd_pay_through_the_simulator_policy_active_and_sms_delivered() {
    let keys = TestKeys::new();
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut env = keys.env();
    env.extend(smsc.gateway_env());
    env.push(("IMIS_GATEWAY_GEPG__POOL_LOW_WATER".into(), "3".into()));
    env.push(("IMIS_GATEWAY_GEPG__POOL_BATCH".into(), "5".into()));
    let server = Server::start(dir.path(), &["--demo"], &env_refs(&env));
    let http = Poster::new(server.url(""));
    // The pool fills through the simulator: bill submission → ack → control-number callback.
    wait_until("the CHF01 pool", Duration::from_secs(30), || {
        let v: serde_json::Value = serde_json::from_str(&http.get("/payments/status")).unwrap();
        v["pool"]["CHF01"]["free"].as_u64().unwrap_or(0) >= 5
    });

    let u = Ussd::new(&server);
    let sid = "e2e-renew-1";
    u.json(sid, NEEMA, "begin", "", 0);
    u.json(sid, NEEMA, "continue", "2", 1);
    u.json(sid, NEEMA, "continue", "1", 2);
    u.json(sid, NEEMA, "continue", NEEMA_CHFID, 3);
    u.json(sid, NEEMA, "continue", "1", 4);
    let (end, done) = u.json(sid, NEEMA, "continue", "1", 5);
    assert!(end, "{done}");
    let cn = common::ussd::control_number(&done);
    wait_until("the control number SMS", Duration::from_secs(30), || {
        texts_to(&smsc, NEEMA).contains(&cn)
    });

    // The simulator pays it, delivering the signed notification twice.
    let (status, paid) = http.post_json(
        "/gepg-sim/pay",
        json!({"control_number": cn, "deliveries": 2}),
    );
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["acks"], json!(["7101", "7101"]), "{paid}");
    wait_until("the confirmation SMS", Duration::from_secs(30), || {
        let t = texts_to(&smsc, NEEMA);
        t.matches(NEEMA_CHFID).count() >= 2 && (t.contains("iko hai") || t.contains("is covered"))
    });

    // Baraka pays the demo's waiting bill, but GePG's notification never arrives; the
    // reconciliation of today finds it and applies it once.
    let (status, silent) = http.post_json(
        "/gepg-sim/pay",
        json!({"control_number": BARAKA_CN, "silent": true}),
    );
    assert_eq!(status, 200, "{silent}");
    let today = (chrono::Utc::now() + chrono::Duration::hours(3)).date_naive();
    // Reconciliation is on the admin listener (with the harness's token).
    let reconcile = || {
        let body = json!({"date": today.to_string()}).to_string();
        let (status, text) = server.admin_call("POST", "/payments/reconcile", &body);
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    };
    let (status, report): (u16, serde_json::Value) = reconcile();
    assert_eq!(status, 200, "{report}");
    let text = report["report"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("1 already applied, 1 missing"), "{text}");
    let (_, again) = reconcile();
    assert!(
        again["report"]
            .as_str()
            .unwrap_or_default()
            .contains("2 already applied, 0 missing"),
        "{again}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let payment = store
        .payment_by_control_number(&cn)
        .unwrap()
        .expect("payment");
    let policy = store
        .policy(payment.details[0].policy.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(policy.status, PolicyStatus::Active);
    let premiums = store.premiums_of_policy(policy.id).unwrap();
    assert_eq!(premiums.len(), 1, "{premiums:?}");
    let baraka = store.payment_by_control_number(BARAKA_CN).unwrap().unwrap();
    let baraka_policy = store
        .policy(baraka.details[0].policy.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(baraka_policy.status, PolicyStatus::Active);
    drop(store);
    // `payments show` tells the story.
    let out = common::run(
        &[
            "payments",
            "show",
            "--control-number",
            &cn,
            "--data-dir",
            &dir.path().display().to_string(),
        ],
        &[],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("from the CHF01 pool") && shown.contains("activated"),
        "{shown}"
    );
}
