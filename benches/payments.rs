//! GePG payment notifications applied per second: each one a signed `gepgPmtSpInfo` whose
//! signature is verified on its raw bytes, applied in one store transaction (payment,
//! premium, policy activation, member coverage, confirmation SMS, mirror rows) and flushed
//! (group commit) before its signed 7101 ack is built, exactly as `/gepg/payment` does minus
//! HTTP. With 1 and 32 concurrent senders, each notification for a different payment.
//!
//! Baselines in the same run: a durable one-key write (the floor the store sets) at the same
//! concurrency, and signature verification alone.
//!
//! `cargo bench --bench payments -- [--payments N]` (default 3000 per concurrency level).

#[path = "../tests/gepg_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use imis_gateway::config::Config;
use imis_gateway::payments::Payments;
use imis_gateway::store::{Store, TxResult};

fn arg_payments() -> usize {
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--payments" {
            if let Some(n) = it.next().and_then(|v| v.parse().ok()) {
                return n;
            }
        }
    }
    3000
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

/// Runs `bodies` through the service with `senders` concurrent senders; (per second, p50, p99).
async fn run(p: Arc<Payments>, bodies: Vec<Vec<u8>>, senders: usize) -> (f64, Duration, Duration) {
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let start = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (p, queue) = (p.clone(), queue.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        return lat;
                    };
                    let t = Instant::now();
                    let r = p.on_payment(&body).await;
                    assert_eq!(r.code, "7101", "{}", String::from_utf8_lossy(&r.body));
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let n = lat.len() as f64;
    (
        n / start.elapsed().as_secs_f64(),
        pct(lat.clone(), 0.5),
        pct(lat, 0.99),
    )
}

async fn durable_baseline(store: &Store, n: usize, senders: usize) -> f64 {
    let start = Instant::now();
    let per = n / senders;
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    let key = format!("{s}:{i}");
                    store
                        .write_durable(|tx| -> TxResult<()> {
                            tx.aux_put("bench.baseline", key.as_bytes(), b"x")?;
                            Ok(())
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per * senders) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = arg_payments();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let levels = [1usize, 32];
    eprintln!("seeding {} waiting payments…", n * levels.len());
    let waiting = support::seed_waiting(dir.path(), n * levels.len());
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let mut config = Config::default();
    config.store.data_dir = dir.path().to_path_buf();
    config.sms.templates_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates");
    config.gepg.pool_low_water = 0;
    let p = Arc::new(
        Payments::new(
            store.clone(),
            &config,
            Arc::new(imis_gateway::sms::Templates::load(&config.sms.templates_dir).unwrap()),
            "http://127.0.0.1:9",
        )
        .unwrap(),
    );
    let gepg = p.keys.simulator.clone().expect("simulator key");
    let bodies: Vec<Vec<u8>> = waiting
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let trx = support::payment_trx(&format!("BENCH-{i}"), &w.control_number, "", 30_000);
            gepg.envelope(&support::notification_xml(&trx)).unwrap()
        })
        .collect();

    // Signature verification alone.
    let inner = support::notification_xml(&support::payment_trx("V", "991110000025", "", 30_000));
    let sig = gepg.sign(inner.as_bytes()).unwrap();
    let verifier = gepg.verifying_key().unwrap();
    let t = Instant::now();
    for _ in 0..2000 {
        assert!(verifier.verify(inner.as_bytes(), &sig));
    }
    let verify_per_s = 2000.0 / t.elapsed().as_secs_f64();

    println!("payments benchmark: {n} notifications per level, each for its own payment");
    println!("signature verification alone: {verify_per_s:.0}/s");
    for (i, &senders) in levels.iter().enumerate() {
        let batch = bodies[i * n..(i + 1) * n].to_vec();
        let commits_before = store.commit_stats();
        let (rate, p50, p99) = rt.block_on(run(p.clone(), batch, senders));
        let base = rt.block_on(durable_baseline(&store, n.min(2000), senders));
        println!(
            "{senders:>2} sender(s): {rate:.0} notifications applied/s (p50 {p50:.1?}, p99 {p99:.1?}); \
             durable one-key write baseline {base:.0}/s; ratio {:.2}",
            rate / base
        );
        let _ = commits_before;
    }
    println!("store: {:?}", store.commit_stats());
    // Sanity: every payment applied once.
    let applied = p.metrics.render();
    assert!(
        applied.contains(&format!(
            "gepg_payments_applied_total {}\n",
            n * levels.len()
        )),
        "{applied}"
    );
}
