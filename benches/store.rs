//! Store benchmark on a demo store of 1,000,000 families (default).
//!
//! Reports: bulk load rate; CHFID point lookups per second with p50/p99 (one thread and two);
//! the coverage read a USSD hop does (insuree → family policies → member rows); durable
//! business writes per second with 1, 8 and 64 concurrent writers (group commit: one flush
//! serves many writers); store size on disk and process RSS.
//!
//! `cargo bench --bench store -- [--families N] [--lookups N] [--seconds S] [--data-dir DIR]
//! [--cache-mb MB] [--warmup N]`
//! With `--data-dir`, an existing demo store there is reused (no reseeding).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::Chfid;
use imis_gateway::store::{Store, StoreOptions, TxResult};
use rand::{Rng, SeedableRng};

struct Args {
    families: u64,
    lookups: usize,
    seconds: u64,
    data_dir: Option<PathBuf>,
    cache_mb: u64,
    warmup: usize,
}

fn args() -> Args {
    let mut a = Args {
        families: 1_000_000,
        lookups: 1_000_000,
        seconds: 5,
        data_dir: None,
        cache_mb: 256,
        warmup: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--families" => a.families = value().parse().unwrap_or(a.families),
            "--lookups" => a.lookups = value().parse().unwrap_or(a.lookups),
            "--seconds" => a.seconds = value().parse().unwrap_or(a.seconds),
            "--data-dir" => a.data_dir = Some(PathBuf::from(value())),
            "--cache-mb" => a.cache_mb = value().parse().unwrap_or(a.cache_mb),
            "--warmup" => a.warmup = value().parse().unwrap_or(a.warmup),
            _ => {} // cargo passes --bench
        }
    }
    a
}

fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

fn main() {
    let args = args();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().join("store"));
    let store = Store::open(
        &dir,
        StoreOptions {
            cache_capacity: args.cache_mb * 1024 * 1024,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    let today = NaiveDate::from_ymd_opt(2026, 6, 30).expect("date");

    println!("# store benchmark");
    let started = Instant::now();
    let options = DemoOptions {
        families: args.families,
        today,
        ..DemoOptions::default()
    };
    match demo::seed_if_empty(&store, &options).expect("seed") {
        Some(summary) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "load: {summary} in {secs:.1}s ({:.0} families/s)",
                summary.families as f64 / secs
            );
        }
        None => println!("load: reusing the store at {}", dir.display()),
    }
    let counts = store.counts().expect("counts");
    println!(
        "records: {} families, {} insurees, {} policies, {} insuree-policies, {} premiums",
        counts.families, counts.insurees, counts.policies, counts.insuree_policies, counts.premiums
    );
    // Generated members hold consecutive CHFID bases from 20,000,000 (see demo.rs); the three
    // named heads are the only others.
    let generated = (counts.insurees as u32).saturating_sub(3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut pick = move || {
        let base = 20_000_000 + rng.gen_range(0..generated.max(1));
        Chfid::from_base(base).expect("chfid")
    };

    // Warm-up: a server in steady state has its hot pages in sled's cache.
    let t0 = Instant::now();
    for _ in 0..args.warmup {
        let _ = store.insuree_by_chfid(pick()).expect("lookup");
    }
    if args.warmup > 0 {
        println!(
            "warm-up: {} lookups in {:.1}s (sled cache {} MiB)",
            args.warmup,
            t0.elapsed().as_secs_f64(),
            args.cache_mb
        );
    }

    // Point lookups, one thread.
    let mut lat = Vec::with_capacity(args.lookups);
    let t0 = Instant::now();
    for _ in 0..args.lookups {
        let c = pick();
        let s = Instant::now();
        let found = store.insuree_by_chfid(c).expect("lookup");
        lat.push(s.elapsed().as_nanos() as u64);
        assert!(found.is_some(), "{c} should exist");
    }
    let total = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "chfid lookup, 1 thread: {:.0}/s, p50 {}, p99 {}, max {}",
        args.lookups as f64 / total,
        us(percentile(&lat, 0.5)),
        us(percentile(&lat, 0.99)),
        us(*lat.last().unwrap_or(&0))
    );

    // Point lookups, two threads (the machine has two cores).
    let per_thread = args.lookups / 2;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let store = store.clone();
            s.spawn(move || {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(100 + t);
                for _ in 0..per_thread {
                    let base = 20_000_000 + rng.gen_range(0..generated.max(1));
                    let c = Chfid::from_base(base).expect("chfid");
                    assert!(store.insuree_by_chfid(c).expect("lookup").is_some());
                }
            });
        }
    });
    println!(
        "chfid lookup, 2 threads: {:.0}/s",
        (per_thread * 2) as f64 / t0.elapsed().as_secs_f64()
    );

    // The coverage read of a USSD hop: member, family policies, that member's rows.
    let n = args.lookups / 10;
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        let c = pick();
        let s = Instant::now();
        let insuree = store.insuree_by_chfid(c).expect("lookup").expect("exists");
        let policies = store.family_policies(insuree.family).expect("policies");
        let mut rows = 0;
        for p in &policies {
            rows += store
                .insuree_policies_of_policy(p.id)
                .expect("rows")
                .iter()
                .filter(|r| r.insuree == insuree.id)
                .count();
        }
        lat.push(s.elapsed().as_nanos() as u64);
        assert!(rows > 0);
    }
    let total = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "coverage read, 1 thread: {:.0}/s, p50 {}, p99 {}",
        n as f64 / total,
        us(percentile(&lat, 0.5)),
        us(percentile(&lat, 0.99))
    );

    // Durable business writes: update a policy and enqueue its effect, then wait for the
    // flush that covers it. 1 writer = one flush per write: the baseline.
    let policies: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..1000 {
            let c = pick();
            let i = store.insuree_by_chfid(c).expect("lookup").expect("exists");
            if let Some(p) = store.family_policies(i.family).expect("policies").first() {
                v.push(p.id);
            }
        }
        v
    };
    let policies = Arc::new(policies);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut baseline = None;
    for writers in [1usize, 8, 64] {
        let before = store.commit_stats();
        let done = Arc::new(AtomicU64::new(0));
        let seq = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let mut lat: Vec<u64> = rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..writers {
                let store = store.clone();
                let done = done.clone();
                let seq = seq.clone();
                let policies = policies.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = w;
                    while Instant::now() < deadline {
                        let pid = policies[i % policies.len()];
                        i += writers;
                        let key = format!("bench-{}", seq.fetch_add(1, Ordering::Relaxed));
                        let s = Instant::now();
                        store
                            .write_durable(|tx| -> TxResult<()> {
                                if let Some(mut p) = tx.policy(pid)? {
                                    p.self_renewed = !p.self_renewed;
                                    tx.put_policy(&p)?;
                                }
                                tx.outbox_push("bench", &key, b"payload")?;
                                Ok(())
                            })
                            .await
                            .expect("durable write");
                        lat.push(s.elapsed().as_nanos() as u64);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("writer"));
            }
            all
        });
        let after = store.commit_stats();
        let writes = done.load(Ordering::Relaxed);
        let rate = writes as f64 / args.seconds as f64;
        let flushes = after.flushes - before.flushes;
        lat.sort_unstable();
        let base = *baseline.get_or_insert(rate);
        println!(
            "durable writes, {writers:>2} writers: {rate:.0}/s ({:.1}x the 1-writer rate), {flushes} flushes, {:.1} writes/flush, p50 {}, p99 {}",
            rate / base,
            writes as f64 / flushes.max(1) as f64,
            us(percentile(&lat, 0.5)),
            us(percentile(&lat, 0.99)),
        );
    }

    store.flush().expect("flush");
    let (rss, hwm) = rss_kib();
    println!(
        "size on disk: {:.1} MiB (sled reports {:.1} MiB); RSS {:.1} MiB, peak {:.1} MiB",
        dir_size(&dir) as f64 / 1048576.0,
        store.size_on_disk().unwrap_or(0) as f64 / 1048576.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
