//! The payment path under duplicate storms and crashes, over HTTP to the real server:
//! - the same notification 50 times at once → one premium, one activation, one SMS, 50 × 7101;
//! - kill -9 at random points while notifications are in flight, 20 times; every ack 7101
//!   seen before a kill is durable, and after restart and redelivery every payment is
//!   applied exactly once;
//! - the simulator pays under the same SpCode decision as bills (never an empty SpCode).

mod common;
mod gepg_support;

use std::collections::HashMap;
use std::time::Duration;

use common::Server;
use gepg_support::*;
use imis_gateway::domain::PolicyStatus;
use imis_gateway::payments::notify;
use imis_gateway::store::Store;
use rand::{Rng, SeedableRng};

fn env_for(keys: &TestKeys) -> Vec<(String, String)> {
    let mut env = keys.env();
    env.push(("IMIS_GATEWAY_GEPG__POOL_LOW_WATER".into(), "0".into()));
    env.push(("IMIS_GATEWAY_GEPG__RECONCILE_AT".into(), "".into()));
    env
}

#[test]
fn fifty_concurrent_deliveries_apply_once_and_all_get_7101() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    let w = seed_waiting(dir.path(), 1).remove(0);
    let server = Server::start(dir.path(), &[], &env_refs(&env_for(&keys)));
    let http = Poster::new(server.url(""));
    let body = keys.signed(&notification_xml(&payment_trx(
        "STORM-1",
        &w.control_number,
        &w.payment.to_string(),
        30_000,
    )));
    let url = server.url("/gepg/payment");
    let answers: Vec<(u16, Vec<u8>)> = http.rt.block_on(async {
        let sends = (0..50).map(|_| post_async(&http.client, &url, body.clone()));
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| r.expect("request"))
            .collect()
    });
    let codes: Vec<(u16, String)> = answers
        .iter()
        .map(|(s, b)| (*s, ack_of(&keys, b).1))
        .collect();
    assert!(
        codes.iter().all(|c| *c == (200, "7101".to_string())),
        "{codes:?}"
    );
    assert_eq!(codes.len(), 50);
    let metrics = http.get("/payments/metrics");
    assert!(
        metrics.contains("gepg_payments_applied_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gepg_payments_duplicate_total 49\n"),
        "{metrics}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), Default::default()).unwrap();
    assert_eq!(
        store.premiums_of_policy(w.policy).unwrap().len(),
        1,
        "one premium"
    );
    let policy = store.policy(w.policy).unwrap().unwrap();
    assert_eq!(policy.status, PolicyStatus::Active, "one activation");
    let activated = store
        .insuree_policies_of_policy(w.policy)
        .unwrap()
        .iter()
        .filter(|r| r.effective_date.is_some())
        .count();
    assert_eq!(activated, 1);
    let sms: Vec<_> = all_sms(&store)
        .into_iter()
        .filter(|s| s.reference == format!("payment:{}", w.payment))
        .collect();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].template, "payment_activated");
    assert_eq!(sms[0].to.as_str(), w.phone);
    // The policy's mirror writes: the activation is queued for the central database once.
    let payment = store.payment(w.payment).unwrap().unwrap();
    assert_eq!(payment.transaction_no.as_deref(), Some("STORM-1"));
}

#[test]
fn kill9_at_random_points_loses_nothing_and_applies_nothing_twice() {
    let keys = TestKeys::new();
    let dir = tempfile::tempdir().unwrap();
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 6;
    let waiting = seed_waiting(dir.path(), ROUNDS * PER_ROUND);
    let env = env_for(&keys);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let bodies: Vec<Vec<u8>> = waiting
        .iter()
        .enumerate()
        .map(|(i, w)| {
            keys.signed(&notification_xml(&payment_trx(
                &format!("CRASH-{i}"),
                &w.control_number,
                &w.payment.to_string(),
                30_000,
            )))
        })
        .collect();
    let mut acked: HashMap<usize, u32> = HashMap::new();
    for round in 0..ROUNDS {
        let server = Server::start(dir.path(), &[], &env_refs(&env));
        let http = Poster::new(server.url(""));
        let url = server.url("/gepg/payment");
        // This round's payments, plus redeliveries of a few earlier ones.
        let mut batch: Vec<usize> = (round * PER_ROUND..(round + 1) * PER_ROUND).collect();
        for _ in 0..3.min(round * PER_ROUND) {
            batch.push(rng.gen_range(0..round * PER_ROUND));
        }
        let kill_after = Duration::from_micros(rng.gen_range(0..40_000));
        let results = http.rt.block_on(async {
            let sends = batch.iter().map(|&i| {
                let (client, url, body) = (http.client.clone(), url.clone(), bodies[i].clone());
                tokio::spawn(async move { (i, post_async(&client, &url, body).await) })
            });
            let handles: Vec<_> = sends.collect();
            tokio::time::sleep(kill_after).await;
            server.kill9();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.expect("task"));
            }
            out
        });
        for (i, r) in results {
            if let Ok((200, body)) = r {
                if ack_of(&keys, &body).1 == "7101" {
                    *acked.entry(i).or_default() += 1;
                }
            }
        }
        // Nothing acknowledged is lost: every acked transaction is on disk after the kill.
        let store = Store::open(dir.path(), Default::default()).unwrap();
        for i in acked.keys() {
            let rec = notify::transaction(&store, "SP111", &format!("CRASH-{i}")).unwrap();
            assert!(
                rec.is_some(),
                "round {round}: CRASH-{i} was acked 7101 but is not stored"
            );
        }
    }
    eprintln!(
        "{} of {} payments were acknowledged before a kill",
        acked.len(),
        waiting.len()
    );
    // GePG redelivers everything it has no 7101 for (we redeliver all: acked ones must be
    // harmless duplicates).
    let server = Server::start(dir.path(), &[], &env_refs(&env));
    let http = Poster::new(server.url(""));
    for (i, body) in bodies.iter().enumerate() {
        let (status, raw) = http.post("/gepg/payment", body.clone());
        assert_eq!(
            (status, ack_of(&keys, &raw).1),
            (200, "7101".into()),
            "CRASH-{i}"
        );
    }
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let sms = all_sms(&store);
    for w in &waiting {
        assert_eq!(
            store.premiums_of_policy(w.policy).unwrap().len(),
            1,
            "{w:?}"
        );
        assert_eq!(
            store.policy(w.policy).unwrap().unwrap().status,
            PolicyStatus::Active
        );
        let n = sms
            .iter()
            .filter(|s| s.reference == format!("payment:{}", w.payment))
            .count();
        assert_eq!(n, 1, "{w:?}");
    }
}

/// The simulated GePG pays a product without an account code (AccCodePremiums blank, as in
/// openIMIS's demo data) under `[gepg] sp_code`, the SpCode its bill went under; with that
/// empty too it refuses to pay rather than send an empty SpCode.
#[test]
fn the_simulator_pays_under_the_same_sp_code_decision_as_the_bill() {
    for (sp_code, paid) in [("SP999", true), ("", false)] {
        let keys = TestKeys::new();
        let dir = tempfile::tempdir().unwrap();
        let w = seed_waiting(dir.path(), 1).remove(0);
        {
            let store = Store::open(dir.path(), Default::default()).unwrap();
            let mut product = store.product(1).unwrap().unwrap();
            product.sp_code = Some("  ".into());
            store
                .write(|tx| -> imis_gateway::store::TxResult<()> { Ok(tx.put_product(&product)?) })
                .unwrap();
            store.flush().unwrap();
        }
        let mut env = env_for(&keys);
        env.push(("IMIS_GATEWAY_GEPG__SP_CODE".into(), sp_code.into()));
        let server = Server::start(dir.path(), &[], &env_refs(&env));
        let http = Poster::new(server.url(""));
        let (status, body) = http.post_json(
            "/gepg-sim/pay",
            serde_json::json!({"control_number": w.control_number}),
        );
        let (exit, logs) = server.terminate();
        assert!(exit.success(), "{}", logs.join("\n"));
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let trx: Vec<String> = notify::transactions(&store)
            .unwrap()
            .into_iter()
            .map(|t| t.notice.sp_code)
            .collect();
        if paid {
            assert_eq!(
                (status, body["acks"].clone()),
                (200, serde_json::json!(["7101"]))
            );
            assert_eq!(trx, vec!["SP999".to_string()]);
        } else {
            assert_eq!(status, 400, "{body}");
            assert_eq!(
                body["error"],
                "product CHF01 has no account code (AccCodePremiums) and [gepg] sp_code is empty"
            );
            assert!(trx.is_empty(), "{trx:?}");
        }
    }
}
