//! Officer SMS commands per second, end to end in-process: MO accepted by the inbound
//! pipeline (stored durably, routed), job run by the real worker task, reply enqueued on
//! the SMS outbox. Baseline in the same run: an MO from an unknown number answered by the
//! router's HELP in the MO's own transaction (the cheapest MO path).
//!
//! `cargo bench --bench officer [-- --families N --reads N --writes N --producers N]`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use imis_gateway::config::Config;
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::officer::{self, audit, worker, Officers};
use imis_gateway::shutdown::Shutdown;
use imis_gateway::sms::inbound::{self, Channel, Dedupe, Mo};
use imis_gateway::sms::{MoPipeline, Templates, SMS_TOPIC};
use imis_gateway::store::{Store, StoreOptions};

struct Args {
    families: u64,
    reads: usize,
    writes: usize,
    producers: usize,
}

fn args() -> Args {
    let mut a = Args {
        families: 10_000,
        reads: 2_000,
        writes: 200,
        producers: 8,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let n = v.get(i + 1).and_then(|x| x.parse::<u64>().ok());
        match (v[i].as_str(), n) {
            ("--families", Some(n)) => a.families = n,
            ("--reads", Some(n)) => a.reads = n as usize,
            ("--writes", Some(n)) => a.writes = n as usize,
            ("--producers", Some(n)) => a.producers = (n as usize).max(1),
            ("--help", _) => {
                println!("cargo bench --bench officer [-- --families N --reads N --writes N --producers N]");
                std::process::exit(0);
            }
            _ => {}
        }
        i += 1;
    }
    a
}

/// Letters only (names may not hold digits): 0 → "Aa", 1 → "Ab", ...
fn letters(mut n: usize) -> String {
    let mut s = String::from("A");
    for _ in 0..4 {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    s
}

fn mo(from: &str, text: String, id: String) -> Mo {
    Mo {
        from: from.into(),
        to: "15200".into(),
        text,
        channel: Channel::Smpp,
        dedupe: Dedupe::Forever(id),
        parts: 1,
        complete: true,
    }
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Accepts `mos` with `producers` concurrent senders, then waits until `expect` SMS are
/// pending on the outbox; returns the elapsed time.
async fn run(
    store: &Store,
    pipeline: &Arc<MoPipeline>,
    mos: Vec<Mo>,
    producers: usize,
    expect: usize,
) -> Duration {
    let start = Instant::now();
    let chunks: Vec<Vec<Mo>> = {
        let mut c: Vec<Vec<Mo>> = (0..producers).map(|_| Vec::new()).collect();
        for (i, m) in mos.into_iter().enumerate() {
            c[i % producers].push(m);
        }
        c
    };
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (s, t) = (store.clone(), pipeline.clone());
        tasks.push(tokio::spawn(async move {
            for m in chunk {
                inbound::accept(&s, &t, &m, Utc::now())
                    .await
                    .expect("accept");
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    while store.pending_count(SMS_TOPIC).expect("count") < expect {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    let t = Instant::now();
    demo::seed_if_empty(
        &store,
        &DemoOptions {
            families: a.families,
            ..DemoOptions::default()
        },
    )
    .expect("seed");
    println!("seeded {} families in {:.1?}", a.families + 3, t.elapsed());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config::default();
    config.officer.grammar_file = root.join("sms-templates/officer/commands.toml");
    config.officer.poll_ms = 5;
    let templates = Templates::load(&root.join("sms-templates")).expect("templates");
    // The pipeline `serve` builds with officer commands enabled.
    let pipeline = Arc::new(MoPipeline::new(
        Arc::new(templates),
        vec![Arc::new(officer::SmsCommands)],
    ));
    let officers = Officers::from_config(&config).expect("grammar");
    let shutdown = Shutdown::new();
    let handle = worker::spawn(officers, store.clone(), shutdown.signal());
    tokio::time::sleep(Duration::from_millis(300)).await; // backfill

    // Baseline: unknown sender, HELP from the router in the MO's transaction.
    let base: Vec<Mo> = (0..a.reads)
        .map(|i| mo("255799000001", "HALI 070707070".into(), format!("b{i}")))
        .collect();
    let d = run(&store, &pipeline, base, a.producers, a.reads).await;
    let base_rate = a.reads as f64 / d.as_secs_f64();
    println!(
        "baseline  HELP to unknown sender: {} MO in {:.2?} = {:.0} MO/s",
        a.reads, d, base_rate
    );

    // Reads: STATUS of a CHFID (no PIN), full worker path.
    let mut done = a.reads;
    let reads: Vec<Mo> = (0..a.reads)
        .map(|i| mo("255754000001", "HALI 070707070".into(), format!("r{i}")))
        .collect();
    let d = run(&store, &pipeline, reads, a.producers, done + a.reads).await;
    done += a.reads;
    let read_rate = a.reads as f64 / d.as_secs_f64();
    println!(
        "STATUS    (read, no PIN):         {} commands in {:.2?} = {:.0} commands/s ({:.2}x baseline)",
        a.reads,
        d,
        read_rate,
        read_rate / base_rate
    );

    // Writes: REG NEW (Argon2 PIN check, family + head + policy + member row + payment +
    // control number + reply + audit in one durable transaction).
    let writes: Vec<Mo> = (0..a.writes)
        .map(|i| {
            let text = format!("SAJILI 1234 MPYA Bench {} 01/01/1990 KE V0111", letters(i));
            mo("255754000001", text, format!("w{i}"))
        })
        .collect();
    let d = run(&store, &pipeline, writes, a.producers, done + a.writes).await;
    let write_rate = a.writes as f64 / d.as_secs_f64();
    println!(
        "REG NEW   (write, PIN, 1 tx):     {} commands in {:.2?} = {:.1} commands/s ({:.3}x baseline)",
        a.writes,
        d,
        write_rate,
        write_rate / base_rate
    );

    // Latency from MO stored to reply committed, from the audit trail.
    let eo1 = store
        .officer_by_code("EO0001")
        .expect("read")
        .expect("EO0001");
    let trail = audit::of_officer(&store, eo1.id).expect("audit");
    for (name, cmd) in [("STATUS", "status"), ("REG NEW", "register")] {
        let mut lat: Vec<i64> = trail
            .iter()
            .filter(|e| e.command == cmd)
            .map(|e| e.at_ms - e.received_ms)
            .collect();
        lat.sort_unstable();
        println!(
            "latency {name:8} MO stored → reply committed: p50 {} ms, p99 {} ms, max {} ms (n={})",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(0),
            lat.len()
        );
    }
    let t = Instant::now();
    let hash = eo1.pin_hash.clone().unwrap_or_default();
    for _ in 0..20 {
        let _ = imis_gateway::domain::pin::verify("1234", &hash);
    }
    println!(
        "argon2 PIN verify alone: {:.1} ms each",
        t.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
    shutdown.trigger();
    let _ = handle.await;
}
