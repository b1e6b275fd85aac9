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

#[test]
fn hmac_signed_callbacks_apply_once_and_forgeries_are_refused() {
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
