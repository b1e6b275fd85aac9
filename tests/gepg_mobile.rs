//! The direct mobile-money callback over HTTP: JSON with an HMAC-SHA256 header under the
//! configured secret, into the same exactly-once payment path as GePG's notifications.

mod common;
mod gepg_support;

use common::Server;
use gepg_support::*;
use imis_gateway::domain::PolicyStatus;
use imis_gateway::payments::mobile::hmac_hex;
use imis_gateway::store::Store;

fn post(http: &Poster, body: &str, sig: Option<&str>) -> (u16, serde_json::Value) {
    http.rt.block_on(async {
        let mut r = http
            .client
            .post(format!("{}/payments/mobile-money", http.base))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(s) = sig {
            r = r.header("X-Signature", s);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let raw = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&raw).unwrap_or_default())
    })
}

/// A store with one payment waiting, and a server that takes callbacks signed with
/// "s3cret".
fn start_with_secret() -> (TestKeys, tempfile::TempDir, Waiting, Server) {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let w = seed_waiting(dir.path(), 1).remove(0);
    let mut env = keys.env();
    env.push(("IMIS_GATEWAY_GEPG__POOL_LOW_WATER".into(), "0".into()));
    env.push((
        "IMIS_GATEWAY_GEPG__MOBILE_MONEY_SECRET".into(),
        "s3cret".into(),
    ));
    let server = Server::start(dir.path(), &[], &env_refs(&env));
    (keys, dir, w, server)
}

#[test]
fn hmac_signed_callbacks_apply_once_and_forgeries_are_refused() {
    let (keys, dir, w, server) = start_with_secret();
    let http = Poster::new(server.url(""));
    let body = format!(
        r#"{{"provider":"tigopesa","transaction_id":"MFS-1","control_number":"{}","amount":"30000","phone":"{}"}}"#,
        w.control_number, w.phone
    );
    let sig = hmac_hex(b"s3cret", body.as_bytes()).unwrap();
    let (status, v) = post(&http, &body, Some("deadbeef"));
    assert_eq!(status, 401, "{v}");
    let (status, _) = post(&http, &body, None);
    assert_eq!(status, 401);
    let (status, v) = post(
        &http,
        "{not json",
        Some(&hmac_hex(b"s3cret", b"{not json").unwrap()),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(&http, &body, Some(&sig));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("applied")),
        "{v}"
    );
    let (status, v) = post(&http, &body, Some(&format!("sha256={sig}")));
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("duplicate")),
        "{v}"
    );
    let other = body.replace("30000", "25000");
    let (status, v) = post(
        &http,
        &other,
        Some(&hmac_hex(b"s3cret", other.as_bytes()).unwrap()),
    );
    assert_eq!(
        (status, v["status"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    let metrics = http.get("/payments/metrics");
    assert!(
        metrics.contains("gepg_payments_conflict_total 1\n"),
        "{metrics}"
    );
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(
        logs.iter().any(|l| l.contains("payment_conflict")),
        "the conflict raises the alarm"
    );
    let store = Store::open(dir.path(), Default::default()).unwrap();
    assert_eq!(store.premiums_of_policy(w.policy).unwrap().len(), 1);
    assert_eq!(
        store.policy(w.policy).unwrap().unwrap().status,
        PolicyStatus::Active
    );
    drop(store);

    // Without a secret the endpoint does not exist.
    let server = Server::start(dir.path(), &[], &env_refs(&keys.env()));
    let (status, _) = post(&Poster::new(server.url("")), &body, Some(&sig));
    assert_eq!(status, 404);
}

/// Issue 14: a validly signed callback in USD is kept but not applied, and the payment's
/// bookkeeping never counts it as TZS received (`payments show` used to print "received
/// TZS 1,000,000,060,004" for TZS payments plus a USD amount).
#[test]
fn a_signed_usd_callback_is_not_applied_and_not_counted_as_tzs_received() {
    let (_keys, dir, w, server) = start_with_secret();
    let http = Poster::new(server.url(""));
    let body = format!(
        r#"{{"provider":"mpesa","transaction_id":"USD-1","control_number":"{}","amount":"1000000000000","currency":"USD","phone":"{}"}}"#,
        w.control_number, w.phone
    );
    let (status, v) = post(
        &http,
        &body,
        Some(&hmac_hex(b"s3cret", body.as_bytes()).unwrap()),
    );
    assert_eq!(status, 200, "{v}");
    // Recorded once (status "applied" means the notice was taken), with outcome NotApplied.
    assert!(
        v["outcome"]
            .as_str()
            .unwrap_or("")
            .starts_with("NotApplied"),
        "{v}"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
    let out = common::run(
        &[
            "payments",
            "show",
            "--control-number",
            &w.control_number,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("received TZS -"), "{text}");
    assert!(!text.contains("received TZS 1,"), "{text}");
    assert!(text.contains("not applied: currency USD"), "{text}");
    let store = Store::open(dir.path(), Default::default()).unwrap();
    assert!(store.premiums_of_policy(w.policy).unwrap().is_empty());
}
