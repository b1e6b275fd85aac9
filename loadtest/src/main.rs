//! `loadtest`: drives a running imis-gateway with a realistic mix — member USSD sessions
//! through the Africa's Talking adapter (think times, abandonment, duplicate hops) and
//! officer MO SMS through `POST /sms/inbound` (with redeliveries) — at target rates or as fast
//! as possible, prints a live progress line, and reports per flow: rate achieved,
//! p50/p95/p99/max latency and errors by kind, as a table or JSON.
//!
//! ```sh
//! cargo run --release -p loadtest -- --target http://127.0.0.1:8080 --duration 30 \
//!     --ussd-concurrency 50 --ussd-rate 0 --sms-rate 20 [--scenario FILE] [--json]
//! ```
//! A scenario file is TOML with the same keys as the long flags (`ussd_rate = 100`...);
//! flags given on the command line win.

mod report;
mod sms;
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
#[command(name = "loadtest", version, about = "Load generator for imis-gateway")]
struct Args {
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
    pub seed: u64,
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
            seed: 1,
        }
    }
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
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
        families
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
        (0.0..=1.0).contains(&p.abandon) && (0.0..=1.0).contains(&p.duplicate),
        "abandon and duplicate are shares between 0 and 1"
    );
    Ok(p)
}

/// Runs `op` on `workers` tasks until `stop`; with `rate` > 0 each worker paces itself to
/// its share of the rate (open loop), else it goes again as soon as `op` returns.
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
                let mut tick = period.map(tokio::time::interval);
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let p = Arc::new(plan(&args)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(p.ussd_concurrency + p.sms_concurrency)?)
        .timeout(Duration::from_secs(20))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let ussd_rec = Arc::new(Recorder::default());
    let sms_rec = Arc::new(Recorder::default());
    let mut tasks = Vec::new();

    let flow = Arc::new(ussd::UssdFlow {
        client: client.clone(),
        url: format!("{}/ussd/africastalking", p.target),
        plan: p.clone(),
        rec: ussd_rec.clone(),
    });
    tasks.extend(spawn_workers(
        p.ussd_concurrency,
        p.ussd_rate,
        p.seed,
        stop.clone(),
        move |w, n, mut rng| {
            let flow = flow.clone();
            async move {
                flow.session(w, n, &mut rng).await;
                rng
            }
        },
    ));
    if p.sms_rate > 0.0 {
        let flow = Arc::new(sms::SmsFlow {
            client: client.clone(),
            url: format!("{}/sms/inbound", p.target),
            plan: p.clone(),
            rec: sms_rec.clone(),
        });
        tasks.extend(spawn_workers(
            p.sms_concurrency.max(1),
            p.sms_rate,
            p.seed + 1,
            stop.clone(),
            move |w, n, mut rng| {
                let flow = flow.clone();
                async move {
                    flow.one(w, n, &mut rng).await;
                    rng
                }
            },
        ));
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(p.duration);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = started.elapsed().as_secs_f64();
        let hops = ussd_rec.ok.load(Ordering::Relaxed);
        let mos = sms_rec.ok.load(Ordering::Relaxed);
        eprint!(
            "\r{t:>5.0}s  ussd {hops} hops ({:.0}/s)  sms {mos} ({:.0}/s)  errors {}   ",
            hops as f64 / t,
            mos as f64 / t,
            ussd_rec.error_count() + sms_rec.error_count()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(25), t).await;
    }
    eprintln!();
    let mut flows = vec![ussd_rec.summary("ussd", elapsed)];
    if p.sms_rate > 0.0 {
        flows.push(sms_rec.summary("sms", elapsed));
    }
    let report = Report {
        target: p.target.clone(),
        seconds: elapsed.as_secs_f64(),
        flows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
