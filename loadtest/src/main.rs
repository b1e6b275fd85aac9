//! `loadtest`: drives a running imis-gateway with a realistic mix — member USSD sessions
//! through the Africa's Talking adapter (think times, abandonment, duplicate hops), officer
//! MO SMS through `POST /sms/inbound` (with redeliveries) and through an SMSC peer (the
//! loadtest is the SMSC the gateway binds to over SMPP), and signed GePG payment
//! notifications (with redeliveries) — at target rates or as fast as possible, prints a live
//! progress line, and reports per flow: rate achieved, p50/p95/p99/max latency and errors by
//! kind, as a table or JSON.
//!
//! ```sh
//! loadtest prepare --data-dir /tmp/lt/data        # stopped store: officers, bills, keys
//! set -a; . /tmp/lt/loadtest-keys/server.env; set +a
//! imis-gateway serve --data-dir /tmp/lt/data &
//! loadtest --target http://127.0.0.1:8080 --duration 30 --ussd-concurrency 50 \
//!     --sms-rate 20 --smsc-rate 20 --gepg-rate 20 --gepg-key /tmp/lt/loadtest-keys/gepg.p12
//! ```
//! A scenario file is TOML with the same keys as the long flags (`ussd_rate = 100`...);
//! flags given on the command line win.

mod gepg;
mod prepare;
mod report;
mod sms;
mod smsc;
mod smsc_pdu;
mod ussd;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

use report::{Recorder, Report};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Load generator for imis-gateway",
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

const AFTER_HELP: &str = "\
Flows: USSD sessions (always), officer MO over HTTP (--sms-rate), officer MO over SMPP with
the loadtest as the SMSC (--smsc-rate), GePG payment notifications (--gepg-rate). The last
two need `loadtest prepare` on the server's stopped store first, then the server started
with the environment it prints (server.env: GePG certificate, SMSC address, limits):

  loadtest prepare --data-dir D --bills 20000 --officers 50
  set -a; . D/../loadtest-keys/server.env; set +a; imis-gateway serve --data-dir D &
  loadtest --sms-rate 10 --smsc-rate 10 --gepg-rate 20 \\
           --gepg-key D/../loadtest-keys/gepg.p12 --baseline-secs 5

Defaults: target http://127.0.0.1:8080, duration 30, ussd_concurrency 50, ussd_rate 0,
think_ms 0, abandon 0.05, duplicate 0.02, families 200, gepg_concurrency 8,
gepg_duplicate 0.05, gepg_bills 10000, smsc_listen 127.0.0.1:2775, smsc_officers 50,
smsc_reply_timeout_ms 10000, smsc_bind_wait_secs 30. Scenario-only keys: sms_text
(\"STATUS {chfid}\"), sms_concurrency (8), officer_phone (HTTP flow, 255754000001),
short_code (15200), gepg_sp_code (SP111), gepg_key_password (loadtest), seed (1).";

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Readies a stopped server's store for the payment and SMPP flows: demo data, loadtest
    /// officers, open bills with control numbers, a GePG key pair and the server's env file.
    Prepare(prepare::PrepareArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Base URL of the server under test.
    #[arg(long)]
    target: Option<String>,
    /// Seconds of load.
    #[arg(long)]
    duration: Option<u64>,
    /// Concurrent USSD sessions.
    #[arg(long)]
    ussd_concurrency: Option<u64>,
    /// USSD sessions started per second; 0 = closed loop, as fast as the server answers.
    #[arg(long)]
    ussd_rate: Option<f64>,
    /// Officer MO SMS per second; 0 = none.
    #[arg(long)]
    sms_rate: Option<f64>,
    /// Mean think time between hops, ms (uniform 0..2x).
    #[arg(long)]
    think_ms: Option<u64>,
    /// Share of USSD sessions abandoned mid-journey (0..1).
    #[arg(long)]
    abandon: Option<f64>,
    /// Share of hops and MO re-sent as duplicates (0..1).
    #[arg(long)]
    duplicate: Option<f64>,
    /// Generated families in the target's demo store (CHFIDs are drawn from them).
    #[arg(long)]
    families: Option<u64>,
    /// GePG payment notifications per second (each pays one prepared bill); 0 = none.
    #[arg(long)]
    gepg_rate: Option<f64>,
    /// Concurrent notification senders.
    #[arg(long)]
    gepg_concurrency: Option<u64>,
    /// Share of notifications delivered a second time (must be acked 7101, applied once).
    #[arg(long)]
    gepg_duplicate: Option<f64>,
    /// GePG's signing key: the gepg.p12 that `loadtest prepare` wrote.
    #[arg(long)]
    gepg_key: Option<String>,
    /// Password of --gepg-key.
    #[arg(long)]
    gepg_key_password: Option<String>,
    /// Bills prepared (`prepare --bills`): control numbers 9988xxxxxxxx, indexes below this.
    #[arg(long)]
    gepg_bills: Option<u64>,
    /// First bill to pay (to run again on the same store without paying a bill twice).
    #[arg(long)]
    gepg_bill_offset: Option<u64>,
    /// Officer MO per second through the loadtest's SMSC (SMPP); 0 = no SMSC.
    #[arg(long)]
    smsc_rate: Option<f64>,
    /// Address the SMSC listens on; the gateway binds to it ([smpp] host/port).
    #[arg(long)]
    smsc_listen: Option<String>,
    /// Loadtest officers sending MO over SMPP (one MO in flight each; see `prepare`).
    #[arg(long)]
    smsc_officers: Option<u64>,
    /// An MO without its reply (submit_sm) after this many ms is a missing reply.
    #[arg(long)]
    smsc_reply_timeout_ms: Option<u64>,
    /// Seconds to wait for the gateway to bind before the load starts.
    #[arg(long)]
    smsc_bind_wait_secs: Option<u64>,
    /// Seconds of `GET /health` round trips (closed loop, --ussd-concurrency clients) before
    /// the load: the baseline the flows' rates compare with. 0 = none.
    #[arg(long)]
    baseline_secs: Option<u64>,
    /// Scenario file (TOML, same keys as the flags with underscores).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The whole configuration of a run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Plan {
    pub target: String,
    pub duration: u64,
    pub ussd_concurrency: u64,
    pub ussd_rate: f64,
    pub sms_rate: f64,
    pub sms_concurrency: u64,
    pub think_ms: u64,
    pub abandon: f64,
    pub duplicate: f64,
    pub families: u64,
    /// The MO text; `{chfid}` is replaced by a CHFID of the store.
    pub sms_text: String,
    /// The sending officer's phone (the demo officer by default).
    pub officer_phone: String,
    /// The short code officers text.
    pub short_code: String,
    pub seed: u64,
    pub gepg_rate: f64,
    pub gepg_concurrency: u64,
    pub gepg_duplicate: f64,
    pub gepg_key: String,
    pub gepg_key_password: String,
    pub gepg_bills: u64,
    pub gepg_bill_offset: u64,
    pub gepg_sp_code: String,
    pub smsc_rate: f64,
    pub smsc_listen: String,
    pub smsc_officers: u64,
    pub smsc_reply_timeout_ms: u64,
    pub smsc_bind_wait_secs: u64,
    pub baseline_secs: u64,
    /// Unique per run (wall clock): in session, MO and transaction ids, so a second run on
    /// the same server never replays the first one's ids.
    #[serde(skip)]
    pub run_tag: String,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            target: "http://127.0.0.1:8080".into(),
            duration: 30,
            ussd_concurrency: 50,
            ussd_rate: 0.0,
            sms_rate: 0.0,
            sms_concurrency: 8,
            think_ms: 0,
            abandon: 0.05,
            duplicate: 0.02,
            families: 200,
            sms_text: "STATUS {chfid}".into(),
            officer_phone: "255754000001".into(),
            short_code: "15200".into(),
            seed: 1,
            gepg_rate: 0.0,
            gepg_concurrency: 8,
            gepg_duplicate: 0.05,
            gepg_key: String::new(),
            gepg_key_password: prepare::KEY_PASSWORD.into(),
            gepg_bills: 10_000,
            gepg_bill_offset: 0,
            gepg_sp_code: "SP111".into(),
            smsc_rate: 0.0,
            smsc_listen: "127.0.0.1:2775".into(),
            smsc_officers: 50,
            smsc_reply_timeout_ms: 10_000,
            smsc_bind_wait_secs: 30,
            baseline_secs: 0,
            run_tag: String::new(),
        }
    }
}

fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let mut p = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("scenario {}", path.display()))?
        }
        None => Plan::default(),
    };
    macro_rules! flag {
        ($($f:ident),*) => { $( if let Some(v) = args.$f.clone() { p.$f = v; } )* };
    }
    flag!(
        target,
        duration,
        ussd_concurrency,
        ussd_rate,
        sms_rate,
        think_ms,
        abandon,
        duplicate,
        families,
        gepg_rate,
        gepg_concurrency,
        gepg_duplicate,
        gepg_key,
        gepg_key_password,
        gepg_bills,
        gepg_bill_offset,
        smsc_rate,
        smsc_listen,
        smsc_officers,
        smsc_reply_timeout_ms,
        smsc_bind_wait_secs,
        baseline_secs
    );
    anyhow::ensure!(
        p.target.starts_with("http://"),
        "target must be an http:// URL, got {:?}",
        p.target
    );
    anyhow::ensure!(
        p.ussd_concurrency > 0,
        "ussd_concurrency must be at least 1"
    );
    anyhow::ensure!(
        [p.abandon, p.duplicate, p.gepg_duplicate]
            .iter()
            .all(|s| (0.0..=1.0).contains(s)),
        "abandon, duplicate and gepg_duplicate are shares between 0 and 1"
    );
    anyhow::ensure!(
        [p.ussd_rate, p.sms_rate, p.gepg_rate, p.smsc_rate]
            .iter()
            .all(|r| r.is_finite() && *r >= 0.0),
        "rates are numbers of at least 0"
    );
    anyhow::ensure!(
        p.gepg_rate == 0.0 || !p.gepg_key.is_empty(),
        "gepg_rate needs gepg_key (the gepg.p12 written by `loadtest prepare`)"
    );
    anyhow::ensure!(
        p.smsc_rate == 0.0 || p.smsc_officers > 0,
        "smsc_rate needs at least one smsc_officers"
    );
    p.run_tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    p.smsc_listen
        .parse::<std::net::SocketAddr>()
        .with_context(|| format!("smsc_listen {:?} is not an address", p.smsc_listen))?;
    Ok(p)
}

/// One flow's unit of work (a USSD journey, an MO, a payment), run over and over by the
/// open-loop workers of [`spawn_flow`]: the worker, its count of units, its random source.
trait Flow: Send + Sync + 'static {
    fn one(
        &self,
        worker: u64,
        n: u64,
        rng: &mut rand::rngs::StdRng,
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// `workers` open-loop workers running `flow` at `rate` units a second in all.
fn spawn_flow<F: Flow>(
    flow: Arc<F>,
    workers: u64,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    spawn_workers(workers, rate, seed, stop, move |w, n, mut rng| {
        let flow = flow.clone();
        async move {
            flow.one(w, n, &mut rng).await;
            rng
        }
    })
}

/// Runs `op` on `workers` tasks until `stop`; with `rate` > 0 each worker paces itself to
/// its share of the rate (open loop: a worker that fell behind catches up), else it goes
/// again as soon as `op` returns.
fn spawn_workers<F, Fut>(
    workers: u64,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
    op: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(u64, u64, rand::rngs::StdRng) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = rand::rngs::StdRng> + Send,
{
    (0..workers)
        .map(|w| {
            let stop = stop.clone();
            let op = op.clone();
            tokio::spawn(async move {
                let mut rng = ussd::rng_for(w, seed);
                let period = (rate > 0.0).then(|| Duration::from_secs_f64(workers as f64 / rate));
                // Each worker starts at its own phase of the period: arrivals spread evenly
                // instead of every worker firing at the same instant each period.
                let mut tick = period.map(|period| {
                    let phase = period.mul_f64(w as f64 / workers as f64);
                    tokio::time::interval_at(tokio::time::Instant::now() + phase, period)
                });
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    n += 1;
                    rng = op(w, n, rng).await;
                }
            })
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Cmd::Prepare(a)) = &args.command {
        return prepare::run(a);
    }
    let p = Arc::new(plan(&args.run)?);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(p, args.run.json))
}

/// `GET /health` round trips, closed loop, for `secs`: the same-run baseline.
async fn baseline(client: &reqwest::Client, p: &Plan) -> report::FlowReport {
    let rec = Arc::new(Recorder::default());
    let stop = Arc::new(AtomicBool::new(false));
    let url = Arc::new(format!("{}/health", p.target));
    let tasks = spawn_workers(p.ussd_concurrency, 0.0, p.seed, stop.clone(), {
        let (client, rec) = (client.clone(), rec.clone());
        move |_, _, rng| {
            let (client, rec, url) = (client.clone(), rec.clone(), url.clone());
            async move {
                let t = Instant::now();
                match client.get(url.as_str()).send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => rec.ok(t.elapsed()),
                        Err(e) => rec.error(ussd::kind_of(&e)),
                    },
                    Ok(r) => rec.error(format!("http {}", r.status().as_u16())),
                    Err(e) => rec.error(ussd::kind_of(&e)),
                }
                rng
            }
        }
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(p.baseline_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(25), t).await;
    }
    rec.summary("baseline /health", elapsed)
}

async fn run(p: Arc<Plan>, json: bool) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(
            p.ussd_concurrency + p.sms_concurrency + p.gepg_concurrency,
        )?)
        .timeout(Duration::from_secs(20))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let ussd_rec = Arc::new(Recorder::default());
    let sms_rec = Arc::new(Recorder::default());
    let gepg_rec = Arc::new(Recorder::default());
    let smsc_rec = Arc::new(Recorder::default());
    let mut tasks = Vec::new();

    // The SMSC first: the gateway (re)binds to it while the rest gets ready.
    let smsc = if p.smsc_rate > 0.0 {
        let addr = p.smsc_listen.parse()?;
        let smsc = smsc::Smsc::listen(addr, smsc_rec.clone()).await?;
        eprintln!("SMSC listening on {addr}; waiting for the gateway to bind…");
        anyhow::ensure!(
            smsc.wait_bound(Duration::from_secs(p.smsc_bind_wait_secs))
                .await,
            "the gateway did not bind to the SMSC on {addr} within {} s (start it with the \
             server.env that `loadtest prepare` wrote)",
            p.smsc_bind_wait_secs
        );
        Some(smsc)
    } else {
        None
    };
    let gepg = if p.gepg_rate > 0.0 {
        let key = gepg::load_key(std::path::Path::new(&p.gepg_key), &p.gepg_key_password)?;
        let before = gepg::Counters::fetch(&client, &p.target)
            .await
            .context("reading the server's /payments/metrics")?;
        Some((
            Arc::new(gepg::GepgFlow {
                client: client.clone(),
                url: format!("{}/gepg/payment", p.target),
                plan: p.clone(),
                rec: gepg_rec.clone(),
                key,
                next_bill: Default::default(),
                acked_first: Default::default(),
                acked_again: Default::default(),
            }),
            before,
        ))
    } else {
        None
    };
    let baseline = if p.baseline_secs > 0 {
        eprintln!("baseline: GET /health for {} s…", p.baseline_secs);
        Some(baseline(&client, &p).await)
    } else {
        None
    };

    tasks.extend(spawn_flow(
        Arc::new(ussd::UssdFlow {
            client: client.clone(),
            url: format!("{}/ussd/africastalking", p.target),
            plan: p.clone(),
            rec: ussd_rec.clone(),
        }),
        p.ussd_concurrency,
        p.ussd_rate,
        p.seed,
        stop.clone(),
    ));
    if p.sms_rate > 0.0 {
        let flow = Arc::new(sms::SmsFlow {
            client: client.clone(),
            url: format!("{}/sms/inbound", p.target),
            plan: p.clone(),
            rec: sms_rec.clone(),
        });
        let workers = p.sms_concurrency.max(1);
        tasks.extend(spawn_flow(
            flow,
            workers,
            p.sms_rate,
            p.seed + 1,
            stop.clone(),
        ));
    }
    if let Some((flow, _)) = &gepg {
        let workers = p.gepg_concurrency.max(1);
        tasks.extend(spawn_flow(
            flow.clone(),
            workers,
            p.gepg_rate,
            p.seed + 2,
            stop.clone(),
        ));
    }
    if let Some(smsc) = &smsc {
        let flow = Arc::new(smsc::SmscFlow {
            smsc: smsc.clone(),
            plan: p.clone(),
            last_text: (0..p.smsc_officers).map(|_| Default::default()).collect(),
        });
        let workers = p.smsc_officers;
        tasks.extend(spawn_flow(
            flow,
            workers,
            p.smsc_rate,
            p.seed + 3,
            stop.clone(),
        ));
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(p.duration);
    let recs = [&ussd_rec, &sms_rec, &gepg_rec, &smsc_rec];
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = started.elapsed().as_secs_f64();
        let r = |rec: &Recorder| rec.ok.load(Ordering::Relaxed) as f64 / t;
        eprint!(
            "\r{t:>5.0}s  ussd {:.0} hops/s  sms {:.0}/s  smpp mo {:.0}/s  gepg {:.0}/s  errors {}   ",
            r(&ussd_rec),
            r(&sms_rec),
            r(&smsc_rec),
            r(&gepg_rec),
            recs.iter().map(|r| r.error_count()).sum::<u64>()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    // Workers finish what they started (an SMPP MO waits out its reply timeout).
    let grace = Duration::from_millis(p.smsc_reply_timeout_ms).max(Duration::from_secs(20))
        + Duration::from_secs(5);
    for t in tasks {
        let _ = tokio::time::timeout(grace, t).await;
    }
    eprintln!();
    let mut flows = Vec::new();
    flows.extend(baseline);
    flows.push(ussd_rec.summary("ussd", elapsed));
    if p.sms_rate > 0.0 {
        flows.push(sms_rec.summary("sms http", elapsed));
    }
    if let Some((flow, before)) = gepg {
        let (first, again) = (
            flow.acked_first.load(Ordering::Relaxed),
            flow.acked_again.load(Ordering::Relaxed),
        );
        gepg_rec.note("bills paid", first);
        gepg_rec.note("redeliveries acked", again);
        match gepg::Counters::fetch(&client, &p.target).await {
            Ok(after) => {
                for e in gepg::Counters::check(before, after, first, again) {
                    gepg_rec.error(e);
                }
            }
            Err(e) => gepg_rec.error(format!("reading /payments/metrics after the run: {e}")),
        }
        flows.push(gepg_rec.summary("gepg payments", elapsed));
    }
    if smsc.is_some() {
        flows.push(smsc_rec.summary("officer MO over SMPP", elapsed));
    }
    let report = Report {
        target: p.target.clone(),
        seconds: elapsed.as_secs_f64(),
        flows,
        load_average: report::load_average(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(args: &[&str]) -> anyhow::Result<Plan> {
        let a = Args::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))?;
        plan(&a.run)
    }

    #[test]
    fn a_scenario_file_sets_every_flow_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mix.toml");
        std::fs::write(
            &path,
            "target = \"http://10.0.0.5:8080\"\nussd_rate = 300\nsms_rate = 5\n\
             smsc_rate = 7.5\nsmsc_listen = \"127.0.0.1:2999\"\nsmsc_officers = 12\n\
             gepg_rate = 30\ngepg_duplicate = 0.1\ngepg_key = \"/k/gepg.p12\"\n\
             sms_text = \"HALI {chfid}\"\nbaseline_secs = 5\n",
        )
        .unwrap();
        let scenario = path.to_str().unwrap();
        let p = plan_of(&["--scenario", scenario]).unwrap();
        assert_eq!(p.target, "http://10.0.0.5:8080");
        assert_eq!(
            (p.ussd_rate, p.sms_rate, p.smsc_rate, p.gepg_rate),
            (300.0, 5.0, 7.5, 30.0)
        );
        assert_eq!(
            (p.smsc_officers, p.smsc_listen.as_str()),
            (12, "127.0.0.1:2999")
        );
        assert_eq!(
            (p.gepg_duplicate, p.gepg_key.as_str()),
            (0.1, "/k/gepg.p12")
        );
        assert_eq!((p.sms_text.as_str(), p.baseline_secs), ("HALI {chfid}", 5));
        assert_eq!(
            p.gepg_concurrency, 8,
            "defaults fill what the file leaves out"
        );
        assert!(!p.run_tag.is_empty());
        let p = plan_of(&[
            "--scenario",
            scenario,
            "--gepg-rate",
            "2",
            "--smsc-officers",
            "3",
        ])
        .unwrap();
        assert_eq!((p.gepg_rate, p.smsc_officers), (2.0, 3));
    }

    #[test]
    fn bad_scenarios_and_flags_are_refused_with_the_reason() {
        let err = |args: &[&str]| plan_of(args).unwrap_err().to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, "gepg_rat = 3\n").unwrap();
        let e = plan_of(&["--scenario", path.to_str().unwrap()]).unwrap_err();
        assert!(format!("{e:#}").contains("gepg_rat"), "{e:#}");
        assert!(err(&["--gepg-rate", "5"]).contains("gepg_key"));
        assert!(err(&["--gepg-duplicate", "1.5"]).contains("shares"));
        assert!(err(&["--smsc-rate=-1"]).contains("rates"));
        assert!(err(&["--smsc-rate", "1", "--smsc-officers", "0"]).contains("smsc_officers"));
        assert!(err(&["--smsc-listen", "nowhere"]).contains("smsc_listen"));
        assert!(err(&["--target", "https://x"]).contains("http://"));
        // `prepare` and the run's flags do not mix.
        assert!(Args::try_parse_from(["loadtest", "--duration", "3", "prepare"]).is_err());
    }

    #[tokio::test]
    async fn open_loop_workers_keep_their_rate_with_spread_phases() {
        let stop = Arc::new(AtomicBool::new(false));
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let s2 = starts.clone();
        let tasks = spawn_workers(4, 40.0, 1, stop.clone(), move |_, _, rng| {
            let s = s2.clone();
            async move {
                s.lock().unwrap().push(t0.elapsed());
                rng
            }
        });
        tokio::time::sleep(Duration::from_millis(480)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let mut v = starts.lock().unwrap().clone();
        v.sort();
        // 40/s for ~0.5 s: about 20 starts, not 4 bursts of 4.
        assert!((16..=24).contains(&v.len()), "{} starts", v.len());
        let in_first_5ms = v.iter().filter(|d| d.as_millis() < 5).count();
        assert!(in_first_5ms <= 2, "{in_first_5ms} workers started at once");
    }
}
