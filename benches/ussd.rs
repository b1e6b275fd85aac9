//! USSD benchmark against the running server: the coverage journey over Africa's Talking at
//! 50 concurrent sessions, side by side with a bare hyper server answering a fixed `CON`
//! body in the same run. Reports hops/s and p50/p99 hop latency for both, and the ratio.
//!
//! `cargo bench --bench ussd -- [--families N] [--data-dir DIR] [--seconds S] [--concurrency C]`
//! Defaults: 1,000,000 families (seeding takes minutes: reuse a store with --data-dir; a
//! store there that already has data is used as is), 10 s per server, 50 sessions.
//! A journey is 5 hops: dial, 1 (coverage), 1 (by CHFID), the CHFID (the coverage lookup),
//! 2 (finish). CHFIDs are drawn from the generated members, so every lookup finds a family.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::Chfid;
use imis_gateway::store::{Store, StoreOptions};
use rand::{Rng, SeedableRng};

const GENERATED_CHFID_BASE: u32 = 20_000_000;

struct Args {
    families: u64,
    data_dir: Option<PathBuf>,
    seconds: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        families: 1_000_000,
        data_dir: None,
        seconds: 10,
        concurrency: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--families" => a.families = value().parse().unwrap_or(a.families),
            "--data-dir" => a.data_dir = Some(PathBuf::from(value())),
            "--seconds" => a.seconds = value().parse().unwrap_or(a.seconds),
            "--concurrency" => a.concurrency = value().parse().unwrap_or(a.concurrency),
            _ => {} // cargo passes --bench
        }
    }
    a
}

struct Run {
    hops: usize,
    errors: usize,
    secs: f64,
    latencies_us: Vec<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.hops as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Drives `concurrency` sessions of the coverage journey against `url` for `secs`.
async fn drive(url: String, families: u64, concurrency: usize, secs: u64, check: bool) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let session = format!("bench-{worker}-{n}");
                let phone = format!("2557{:08}", rng.gen_range(10_000_000..99_999_999u32));
                let base = GENERATED_CHFID_BASE + rng.gen_range(0..families.max(1) as u32);
                let chfid = Chfid::from_base(base).map(|c| format!("{:09}", c.value()));
                let chfid = chfid.unwrap_or_default();
                let path = [
                    "",
                    "1",
                    "1*1",
                    &format!("1*1*{chfid}"),
                    &format!("1*1*{chfid}*2"),
                ];
                for (i, text) in path.iter().enumerate() {
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .form(&[
                            ("sessionId", session.as_str()),
                            ("serviceCode", "*152*00#"),
                            ("phoneNumber", phone.as_str()),
                            ("networkCode", "64002"),
                            ("text", text),
                        ])
                        .send()
                        .await;
                    let body = match r {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    lat.push(t.elapsed().as_micros() as u64);
                    let ok = body.starts_with("CON ") || body.starts_with("END ");
                    let found = !check
                        || i != 3
                        || body.contains(" A")
                        || body.contains(" I")
                        || body.contains(" E");
                    if !ok || !found {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            latencies_us.extend(l);
            errors += e;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Run {
        hops: latencies_us.len(),
        errors,
        secs,
        latencies_us,
    }
}

/// A bare hyper server answering every request with a fixed `CON` body.
async fn bare_server() -> std::net::SocketAddr {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "text/plain")
                            .body(String::from(
                                "CON Karibu CHF iliyoboreshwa\n1 Angalia bima\n2 Lipia bima",
                            ))
                            .expect("response"),
                    )
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    addr
}

fn main() {
    let a = args();
    let temp;
    let dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().expect("tempdir");
            temp.path().to_path_buf()
        }
    };
    {
        let store = Store::open(&dir, StoreOptions::default()).expect("open store");
        let t = Instant::now();
        let opts = DemoOptions {
            families: a.families,
            ..DemoOptions::default()
        };
        match demo::seed_if_empty(&store, &opts).expect("seed") {
            Some(s) => println!("seeded: {s} in {:.0?}", t.elapsed()),
            None => println!("store in {} already has data: reused", dir.display()),
        }
    }
    let families = if a.data_dir.is_some() {
        a.families
    } else {
        a.families
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_imis-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IMIS_GATEWAY_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let stdout = child.stdout.take().expect("stdout");
    let mut addr = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(a) = line.strip_prefix("imis-gateway ready on ") {
            addr = a.trim().to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "server did not start");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (bare, gw) = rt.block_on(async {
        let bare_addr = bare_server().await;
        let bare_url = format!("http://{bare_addr}/ussd/africastalking");
        let gw_url = format!("http://{addr}/ussd/africastalking");
        // Warm up both (connections, page cache), then measure each in turn.
        drive(bare_url.clone(), families, a.concurrency, 1, false).await;
        drive(gw_url.clone(), families, a.concurrency, 2, true).await;
        let bare = drive(bare_url, families, a.concurrency, a.seconds, false).await;
        let gw = drive(gw_url, families, a.concurrency, a.seconds, true).await;
        (bare, gw)
    });
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "USSD coverage journey, {} concurrent sessions, {} families, {} s per server",
        a.concurrency, families, a.seconds
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>8}",
        "server", "hops/s", "p50 ms", "p99 ms", "errors"
    );
    for (name, r) in [("bare hyper (fixed CON)", &bare), ("imis-gateway", &gw)] {
        println!(
            "{:<22} {:>10.0} {:>10.2} {:>10.2} {:>8}",
            name,
            r.rate(),
            r.pct(0.50),
            r.pct(0.99),
            r.errors
        );
    }
    println!(
        "throughput ratio gateway/bare: {:.2} (goal >= 0.50); gateway p99 {:.2} ms (goal < 10 ms)",
        gw.rate() / bare.rate().max(1.0),
        gw.pct(0.99)
    );
}
