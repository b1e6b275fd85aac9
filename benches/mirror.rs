//! Mirror benchmark against a real PostgreSQL (a throwaway cluster, as the tests start)
//! holding the REAL openIMIS schema (upstream's scripts, tests/third_party/openimis-db/).
//!
//! 1. **Import**: `--families N` (default 1,000,000) families of `--members M` (default 3)
//!    are generated in the central database with SQL (each: M insurees, one policy, M
//!    member rows, one premium), then `import::import` loads them into an empty store.
//!    Reports rows/s and the process's peak RSS, against a baseline measured in the same
//!    run: the import's own SELECTs streamed from PostgreSQL without decoding or storing.
//! 2. **Throughput**: `--backlog B` (default 20,000) policy updates queued while the writer
//!    is stopped, then drained: rows/s (one write = one history row + one in-place update).
//! 3. **Lag**: a steady `--rate R` (default 500) writes/s for `--seconds S` (default 20) with
//!    the writer running; the lag (age of the oldest unmirrored write, the `/health` metric)
//!    is sampled every 10 ms: p50/p99/max.
//!
//! `cargo bench --bench mirror -- [--families N] [--members M] [--backlog B] [--rate R]
//! [--seconds S]`

#[path = "../tests/common/openimis_db.rs"]
mod openimis_db;
#[path = "../tests/common/pg.rs"]
mod pg;

use openimis_db::{Data, OpenImisPg};

use std::convert::Infallible;
use std::time::{Duration, Instant};

use imis_gateway::domain::{Id, PolicyStatus};
use imis_gateway::mirror::schema::Select;
use imis_gateway::mirror::spelling::Spellings;
use imis_gateway::mirror::{import, tables, MirrorWriter, WriterOptions};
use imis_gateway::shutdown::Shutdown;
use imis_gateway::store::{Store, TxResult, MIRROR_TOPIC};

struct Args {
    families: u64,
    members: u64,
    backlog: u64,
    rate: u64,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        families: 1_000_000,
        members: 3,
        backlog: 20_000,
        rate: 500,
        seconds: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--families" => a.families = value().parse().unwrap_or(a.families),
            "--members" => a.members = value().parse().unwrap_or(a.members).max(1),
            "--backlog" => a.backlog = value().parse().unwrap_or(a.backlog),
            "--rate" => a.rate = value().parse().unwrap_or(a.rate).max(1),
            "--seconds" => a.seconds = value().parse().unwrap_or(a.seconds),
            _ => {} // cargo passes --bench
        }
    }
    a
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Lookups plus `families` generated families in database `db` (the real schema, which
/// holds a few locations of its own: ours take keys above them), with FK triggers off
/// while loading (the rows are consistent by construction) and the sequences moved past
/// the generated keys.
fn generate(pg: &pg::Pg, db: &str, families: u64, members: u64) {
    let (n, m) = (families, members);
    let sql = format!(
        r#"
SET session_replication_role = replica;
INSERT INTO "tblLocations" ("LocationId","LocationUUID","LocationCode","LocationName","LocationType","ParentLocationId","ValidityFrom","AuditUserId") VALUES
 (900001, gen_random_uuid()::text, 'BR01', 'Dodoma', 'R', NULL, now(), 1),
 (900002, gen_random_uuid()::text, 'BD01', 'Kongwa', 'D', 900001, now(), 1),
 (900003, gen_random_uuid()::text, 'BV0111', 'Mlali', 'V', 900002, now(), 1);
INSERT INTO "tblProduct" ("ProdID","ProdUUID","ProductCode","ProductName","DateFrom","DateTo","InsurancePeriod","LumpSum","MemberCount","GracePeriod","ValidityFrom","AuditUserID","AccCodePremiums")
 VALUES (1, gen_random_uuid()::text, 'CHF01', 'CHF Iliyoboreshwa', '2020-01-01', '2030-12-31', 12, 30000, 6, 1, now(), 1, 'SP111');
INSERT INTO "tblFamilies" ("FamilyID","FamilyUUID","InsureeID","LocationId","Poverty","ValidityFrom","AuditUserID")
 SELECT g, gen_random_uuid()::text, (g - 1) * {m} + 1, 900003, false, now(), 1 FROM generate_series(1, {n}) g;
INSERT INTO "tblInsuree" ("InsureeID","InsureeUUID","FamilyID","CHFID","LastName","OtherNames","DOB","Gender","IsHead","CardIssued","Relationship","ValidityFrom","AuditUserID")
 SELECT i, gen_random_uuid()::text, (i - 1) / {m} + 1,
        lpad(((10000000 + i) * 10 + (10000000 + i) % 7)::text, 9, '0'),
        'Mushi', 'Neema', date '1980-01-01' + (i % 9000)::int, CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END,
        (i - 1) % {m} = 0, false, CASE WHEN (i - 1) % {m} = 0 THEN NULL ELSE 4 END, now(), 1
 FROM generate_series(1, {n} * {m}) i;
INSERT INTO "tblPolicy" ("PolicyID","PolicyUUID","FamilyID","EnrollDate","StartDate","EffectiveDate","ExpiryDate","PolicyStatus","PolicyValue","ProdID","PolicyStage","ValidityFrom","AuditUserID")
 SELECT g, gen_random_uuid()::text, g, date '2024-01-10', date '2024-01-10', date '2024-01-10', date '2025-01-09', 2, 30000, 1, 'N', now(), 1
 FROM generate_series(1, {n}) g;
INSERT INTO "tblInsureePolicy" ("InsureePolicyID","InsureeID","PolicyId","EnrollmentDate","StartDate","EffectiveDate","ExpiryDate","ValidityFrom","AuditUserID")
 SELECT i, i, (i - 1) / {m} + 1, date '2024-01-10', date '2024-01-10', date '2024-01-10', date '2025-01-09', now(), 1
 FROM generate_series(1, {n} * {m}) i;
INSERT INTO "tblPremium" ("PremiumId","PremiumUUID","PolicyID","Amount","Receipt","PayDate","PayType","isPhotoFee","ValidityFrom","AuditUserID")
 SELECT g, gen_random_uuid()::text, g, 30000, 'R' || g, date '2024-01-10', 'M', false, now(), 1 FROM generate_series(1, {n}) g;
SELECT setval('"tblLocations_LocationId_seq"', 900003), setval('"tblProduct_ProdID_seq"', 1),
       setval('"tblFamilies_FamilyID_seq"', {n}), setval('"tblInsuree_InsureeID_seq"', {n} * {m}),
       setval('"tblPolicy_PolicyID_seq"', {n}), setval('"tblInsureePolicy_InsureePolicyID_seq"', {n} * {m}),
       setval('"tblPremium_PremiumId_seq"', {n});
ANALYZE;
"#
    );
    let file = std::env::temp_dir().join(format!("imis-mirror-bench-{}.sql", std::process::id()));
    std::fs::write(&file, sql).expect("write the generator SQL");
    if let Err(e) = pg.try_psql_file_in(db, &file) {
        panic!("generating the central data: {e}");
    }
    let _ = std::fs::remove_file(&file);
}

/// The baseline: the import's own SELECTs (as the import spells them) streamed, each row
/// received and dropped undecoded.
async fn stream_only(client: &tokio_postgres::Client) -> u64 {
    use futures_util::TryStreamExt;
    let mut spellings = Spellings::default();
    let mut n = 0;
    for desc in tables::ALL.iter().filter(|d| d.pull.is_some()) {
        let sql = spellings
            .apply(client, desc.select(Select::Pull))
            .await
            .expect("catalogue");
        let stream = client
            .query_raw(&sql, std::iter::empty::<i32>())
            .await
            .expect("select");
        let mut stream = std::pin::pin!(stream);
        while let Some(row) = stream.try_next().await.expect("row") {
            std::hint::black_box(row.len());
            n += 1;
        }
    }
    n
}

fn set_status(store: &Store, policy: Id, status: PolicyStatus) {
    store
        .write(|tx| -> TxResult<(), Infallible> {
            if let Some(mut p) = tx.policy(policy)? {
                p.status = status;
                tx.put_policy(&p)?;
            }
            Ok(())
        })
        .expect("write");
}

fn flip(i: u64) -> PolicyStatus {
    if i.is_multiple_of(2) {
        PolicyStatus::Suspended
    } else {
        PolicyStatus::Active
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "mirror bench: {} families x {} members; backlog {}; {} writes/s for {} s",
        a.families, a.members, a.backlog, a.rate, a.seconds
    );

    // 1. Import.
    let cluster = OpenImisPg::start();
    let dsn = cluster.create("bench", Data::Empty);
    let pg = &cluster.pg;
    let t = Instant::now();
    generate(pg, "bench", a.families, a.members);
    println!(
        "central data generated in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let client = rt
        .block_on(imis_gateway::mirror::connect(&dsn))
        .expect("connect");
    let t = Instant::now();
    let baseline_rows = rt.block_on(stream_only(&client));
    let baseline_secs = t.elapsed().as_secs_f64();
    let baseline_rate = baseline_rows as f64 / baseline_secs;
    println!(
        "baseline (stream only): {baseline_rows} rows in {baseline_secs:.1}s = {baseline_rate:.0} rows/s"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), Default::default()).expect("store");
    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let counts = rt
        .block_on(import::import(&client, &store, |_, _| {}))
        .expect("import");
    let secs = t.elapsed().as_secs_f64();
    let rows: u64 = counts.iter().map(|(_, n)| n).sum();
    let rate = rows as f64 / secs;
    println!(
        "import: {rows} rows ({} families) in {secs:.1}s = {rate:.0} rows/s, {:.0} families/s; \
         {:.2}x the stream-only baseline's time",
        a.families,
        a.families as f64 / secs,
        secs / baseline_secs
    );
    println!(
        "import: peak RSS {:.0} MiB (before import {rss_before:.0} MiB)",
        peak_rss_mib()
    );
    for (table, n) in &counts {
        println!("  {table}: {n}");
    }

    // 2. Throughput: a backlog written with the writer stopped, then drained.
    let policies: Vec<Id> = {
        let mut v = Vec::new();
        store
            .for_each_policy(|p| {
                v.push(p.id);
                Ok(v.len() < 10_000)
            })
            .expect("policies");
        v
    };
    let t = Instant::now();
    for i in 0..a.backlog {
        let p = policies[(i as usize) % policies.len()];
        set_status(&store, p, flip(i / policies.len() as u64));
    }
    println!(
        "backlog: {} writes queued in {:.1}s",
        a.backlog,
        t.elapsed().as_secs_f64()
    );
    // The writer waits one lease before its first claim (see WriterOptions); that wait is
    // not part of the drain.
    let lease = Duration::from_millis(100);
    let opts = WriterOptions {
        lease,
        poll: Duration::from_millis(5),
        ..WriterOptions::default()
    };
    let shutdown = Shutdown::new();
    let writer = MirrorWriter::new(store.clone(), dsn.clone(), opts);
    let t = Instant::now();
    let task = rt.spawn(writer.run(shutdown.signal()));
    while store.pending_count(MIRROR_TOPIC).expect("pending") > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = t.elapsed().saturating_sub(lease).as_secs_f64();
    let drain_rate = a.backlog as f64 / secs;
    println!(
        "throughput: {} writes drained in {secs:.2}s = {drain_rate:.0} writes/s \
         ({:.0} central rows/s: history row + update); {:.1}x the {} writes/s target",
        a.backlog,
        2.0 * drain_rate,
        drain_rate / a.rate as f64,
        a.rate
    );

    // 3. Lag under a steady rate, writer running.
    let total = a.rate * a.seconds;
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    let sampler_store = store.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut lags = Vec::new();
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let lag = sampler_store
                .oldest_pending_age(MIRROR_TOPIC, chrono::Utc::now())
                .ok()
                .flatten()
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0);
            lags.push(lag);
            std::thread::sleep(Duration::from_millis(10));
        }
        lags
    });
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let p = policies[(i as usize * 7919) % policies.len()];
        set_status(&store, p, flip(i));
    }
    let produced_secs = start.elapsed().as_secs_f64();
    while store.pending_count(MIRROR_TOPIC).expect("pending") > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lags = sampler.join().expect("sampler");
    lags.sort_by(|a, b| a.total_cmp(b));
    println!(
        "steady: {total} writes in {produced_secs:.1}s ({:.0} writes/s offered); lag p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms ({} samples)",
        total as f64 / produced_secs,
        percentile(&lags, 0.50),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0.0),
        lags.len()
    );
    shutdown.trigger();
    let _ = rt.block_on(task);
    println!(
        "dead letters: {}",
        store.dead(MIRROR_TOPIC).map(|d| d.len()).unwrap_or(0)
    );
}
