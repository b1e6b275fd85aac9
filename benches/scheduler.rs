//! Scheduler benchmark: the daily jobs over a demo store of 1,000,000 families (default).
//!
//! Reports, per job and window: policies scanned, records changed, SMS enqueued, wall time,
//! and SMS enqueued per second; then the whole week. The baseline in the same run is a bare
//! scan of the policy tree (decode only), so the ratio shows what the jobs add to reading.
//!
//! `cargo bench --bench scheduler -- [--families N] [--data-dir DIR] [--days D] [--from DATE]`
//! With `--data-dir`, an existing demo store there is reused; the jobs write to it, so use a
//! copy you can throw away. The demo data is dated 2026-03-01 and the run walks the week
//! from that day (expiries spread over the year give a steady daily load); on a reused store
//! pass `--from` a later day, since windows already run add nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use imis_gateway::config::SchedulerConfig;
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::scheduler::clock::eat;
use imis_gateway::scheduler::{Job, Scheduler};
use imis_gateway::sms::{Templates, SMS_TOPIC};
use imis_gateway::store::{Store, StoreOptions};

fn main() {
    let mut families = 1_000_000u64;
    let mut data_dir: Option<PathBuf> = None;
    let mut days = 7i64;
    let mut from: Option<NaiveDate> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--families" => families = value().parse().unwrap_or(families),
            "--data-dir" => data_dir = Some(PathBuf::from(value())),
            "--days" => days = value().parse().unwrap_or(days),
            "--from" => from = value().parse().ok(),
            _ => {}
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = data_dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let today = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
    let store = Store::open(&dir, StoreOptions::default()).expect("open store");
    let t = Instant::now();
    if let Some(s) = demo::seed_if_empty(
        &store,
        &DemoOptions {
            families,
            seed: demo::DEFAULT_SEED,
            today,
        },
    )
    .expect("seed")
    {
        println!("seeded {s} in {:.1} s", t.elapsed().as_secs_f64());
    }

    // Baseline: the bare scan every job starts with.
    let t = Instant::now();
    let mut n = 0u64;
    store
        .for_each_policy(|_| {
            n += 1;
            Ok(true)
        })
        .expect("scan");
    let scan = t.elapsed().as_secs_f64();
    println!(
        "baseline: scan of {n} policies in {scan:.2} s ({:.0}/s)",
        n as f64 / scan
    );

    let templates = Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates"))
        .expect("templates");
    let sched = Scheduler::new(
        store.clone(),
        Arc::new(templates),
        SchedulerConfig::default(),
        "*152*00#".into(),
    )
    .expect("scheduler");
    let sms_before = store.pending_count(SMS_TOPIC).expect("count");
    let (mut total_secs, mut total_sms) = (0.0, 0u64);
    println!(
        "{:<18} {:<11} {:>9} {:>8} {:>6} {:>8} {:>9} {:>6}",
        "job", "window", "examined", "changed", "sms", "secs", "sms/s", "x scan"
    );
    let first = from.unwrap_or(today);
    for day in 0..days {
        let window = first + Duration::days(day);
        let now = eat()
            .from_local_datetime(&window.and_hms_opt(10, 0, 0).expect("time"))
            .single()
            .expect("EAT")
            .with_timezone(&Utc);
        for job in Job::ALL {
            let t = Instant::now();
            let r = sched.run_window(job, window, now, false).expect("job");
            let secs = t.elapsed().as_secs_f64();
            total_secs += secs;
            total_sms += r.sms;
            println!(
                "{:<18} {:<11} {:>9} {:>8} {:>6} {:>8.2} {:>9.0} {:>6.2}",
                r.job,
                window.to_string(),
                r.examined,
                r.changed,
                r.sms,
                secs,
                r.sms as f64 / secs,
                secs / scan
            );
        }
    }
    let queued = store.pending_count(SMS_TOPIC).expect("count") - sms_before;
    println!(
        "all jobs, {days} windows: {total_secs:.1} s, {total_sms} SMS enqueued ({queued} in the outbox), {:.0} SMS/s overall",
        total_sms as f64 / total_secs
    );
}
