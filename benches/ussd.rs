//! USSD benchmark against the running server: the coverage journey over Africa's Talking at
//! 50 concurrent sessions, side by side with a bare hyper server answering a fixed `CON`
//! body in the same run. Reports hops/s and p50/p99 hop latency for both, and the ratio.
//!
//! ```sh
//! cargo run --release -- demo-data --families 1000000 --data-dir /tmp/imis-1m   # once
//! cargo bench --bench ussd -- --data-dir /tmp/imis-1m [--seconds S] [--warmup S] [--concurrency C]
//! ```
//! Defaults: 1,000,000 families (without --data-dir, or with an empty one, the bench seeds
//! them itself, which takes minutes: reuse a directory), 5 s warm-up, 10 s per server, 50
//! sessions. Each session is closed-loop (the next hop leaves when the reply arrives) on its
//! own keep-alive connection, through a minimal HTTP/1.1 client that costs both servers the
//! same. A journey is 5 hops: dial, 1 (coverage), 1 (by CHFID), the CHFID (the coverage
//! lookup), 2 (finish). CHFIDs are drawn from the generated members, so every lookup finds a
//! family; a lookup reply without a member status line counts as an error.

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
    warmup: u64,
    concurrency: usize,
    /// An already running gateway (`host:port`) instead of starting one: for profiling.
    target: Option<String>,
    /// Its process id, to read its CPU time.
    target_pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        families: 1_000_000,
        data_dir: None,
        seconds: 10,
        warmup: 5,
        concurrency: 50,
        target: None,
        target_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--families" => a.families = value().parse().unwrap_or(a.families),
            "--data-dir" => a.data_dir = Some(PathBuf::from(value())),
            "--seconds" => a.seconds = value().parse().unwrap_or(a.seconds),
            "--warmup" => a.warmup = value().parse().unwrap_or(a.warmup),
            "--target" => a.target = Some(value()),
            "--target-pid" => a.target_pid = value().parse().ok(),
            "--concurrency" => a.concurrency = value().parse().unwrap_or(a.concurrency),
            _ => {} // cargo passes --bench
        }
    }
    a
}

struct Run {
    /// CPU seconds the server under test used during the run.
    server_cpu: f64,
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

/// A minimal HTTP/1.1 keep-alive client on one connection: the same few bytes of work per
/// request for both servers, so the client (on the same 2 cores) takes as little CPU as it
/// can from the server under test.
struct Conn {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    host: String,
    path: String,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str, path: &str) -> std::io::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: tokio::io::BufReader::new(stream),
            host: addr.to_string(),
            path: path.to_string(),
            buf: Vec::with_capacity(1024),
        })
    }

    /// POSTs a form body and returns the response body.
    async fn post_form(&mut self, body: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.buf.clear();
        self.buf.extend_from_slice(
            format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                self.path,
                self.host,
                body.len()
            )
            .as_bytes(),
        );
        self.buf.extend_from_slice(body.as_bytes());
        self.stream.get_mut().write_all(&self.buf).await?;
        let mut len = None;
        let mut status_ok = false;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if l.starts_with("HTTP/1.1 ") {
                status_ok = l.as_bytes().get(9) == Some(&b'2');
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
        }
        let Some(len) = len else {
            return Err(std::io::Error::other("no content-length"));
        };
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await?;
        if !status_ok {
            return Err(std::io::Error::other("status not 2xx"));
        }
        String::from_utf8(body).map_err(std::io::Error::other)
    }
}

/// `*` and `#` percent-encoded; the rest of our values are digits and letters.
fn enc(v: &str) -> String {
    v.replace('*', "%2A").replace('#', "%23")
}

/// Drives `concurrency` sessions of the coverage journey against `addr` for `secs`.
async fn drive(addr: String, families: u64, concurrency: usize, secs: u64, check: bool) -> Run {
    // Session ids must not repeat across runs (warm-up, measure) or bench invocations: a
    // repeated id is a duplicate hop, answered from the cache.
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (addr, stop) = (addr.clone(), stop.clone());
        let prefix = format!("bench-{epoch}-{run}-{worker}");
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0usize;
            let mut n = 0u64;
            let Ok(mut conn) = Conn::open(&addr, "/ussd/africastalking").await else {
                return (lat, 1);
            };
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let session = format!("{prefix}-{n}");
                let phone = format!("2557{:08}", rng.gen_range(10_000_000..99_999_999u32));
                let base = GENERATED_CHFID_BASE + rng.gen_range(0..families.max(1) as u32);
                let chfid = Chfid::from_base(base).map(|c| c.to_string());
                let chfid = chfid.unwrap_or_default();
                let path = [
                    String::new(),
                    "1".into(),
                    "1*1".into(),
                    format!("1*1*{chfid}"),
                    format!("1*1*{chfid}*2"),
                ];
                for (i, text) in path.iter().enumerate() {
                    let body = format!(
                        "sessionId={session}&serviceCode={}&phoneNumber={phone}&networkCode=64002&text={}",
                        enc("*152*00#"),
                        enc(text)
                    );
                    let t = Instant::now();
                    let r = conn.post_form(&body).await;
                    lat.push(t.elapsed().as_micros() as u64);
                    let body = match r {
                        Ok(b) => b,
                        Err(_) => {
                            errors += 1;
                            // A broken connection: reopen and start a new session.
                            match Conn::open(&addr, "/ussd/africastalking").await {
                                Ok(c) => conn = c,
                                Err(_) => return (lat, errors),
                            }
                            break;
                        }
                    };
                    let ok = body.starts_with("CON ") || body.starts_with("END ");
                    // The lookup hop must show a member line with a status letter.
                    let found = !check
                        || i != 3
                        || [" A\n", " I\n", " E\n", " S\n"].iter().any(|l| body.contains(l));
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
        server_cpu: 0.0,
        hops: latencies_us.len(),
        errors,
        secs,
        latencies_us,
    }
}

/// A bare hyper server answering every request with a fixed `CON` body, on its own runtime
/// (two worker threads, like the gateway's on this machine) so it does not share a scheduler
/// with the client.
fn bare_server() -> std::net::SocketAddr {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bare-hyper")
            .enable_all()
            .build()
            .expect("bare runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = tx.send(listener.local_addr().expect("addr"));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "text/plain; charset=utf-8")
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
    });
    rx.recv().expect("bare server address")
}

/// CPU seconds (user + system) of the threads of process `pid` whose name starts with
/// `prefix` ("" = every thread), from /proc: what a server spent, however busy the machine.
fn cpu_secs(pid: u32, prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut total = 0u64;
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        // Fields after the name: state is field 3, utime 14 and stime 15.
        let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |n: usize| {
            rest.get(n - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += field(14) + field(15);
    }
    total as f64 / ticks
}

/// `GET /metrics` from the gateway, as text (blocking: called once, after the runs).
fn fetch_metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The server's own mean hop time (its histogram's sum / count), in ms.
fn server_mean_ms(metrics: &str) -> Option<f64> {
    let get = |name: &str| {
        metrics.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
    };
    let sum = get("ussd_hop_latency_seconds_sum{gateway=\"africastalking\"}")?;
    let count = get("ussd_hop_latency_seconds_count{gateway=\"africastalking\"}")?;
    (count > 0.0).then(|| sum / count * 1000.0)
}

/// Seeds `dir` if it is empty, starts the release server on it, returns it and its address.
fn start_server(dir: &std::path::Path, families: u64) -> (std::process::Child, String) {
    {
        let store = Store::open(dir, StoreOptions::default()).expect("open store");
        let t = Instant::now();
        let opts = DemoOptions {
            families,
            ..DemoOptions::default()
        };
        match demo::seed_if_empty(&store, &opts).expect("seed") {
            Some(s) => println!("seeded: {s} in {:.0?}", t.elapsed()),
            None => println!("store in {} already has data: reused", dir.display()),
        }
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_imis-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
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
    (child, addr)
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
    let (mut child, addr) = match &a.target {
        Some(t) => (None, t.clone()),
        None => {
            let (c, addr) = start_server(&dir, a.families);
            (Some(c), addr)
        }
    };
    let families = a.families;
    let gw_pid = child.as_ref().map(|c| c.id()).or(a.target_pid);
    let bare_addr = bare_server().to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (bare, gw) = rt.block_on(async {
        // Warm up both (connections, page cache), then measure each in turn.
        drive(bare_addr.clone(), families, a.concurrency, 1, false).await;
        drive(addr.clone(), families, a.concurrency, a.warmup, true).await;
        let me = std::process::id();
        let cpu0 = cpu_secs(me, "bare-hyper");
        let mut bare = drive(bare_addr, families, a.concurrency, a.seconds, false).await;
        bare.server_cpu = cpu_secs(me, "bare-hyper") - cpu0;
        let cpu0 = gw_pid.map_or(0.0, |p| cpu_secs(p, ""));
        let mut gw = drive(addr.clone(), families, a.concurrency, a.seconds, true).await;
        gw.server_cpu = gw_pid.map_or(0.0, |p| cpu_secs(p, "")) - cpu0;
        (bare, gw)
    });
    let server_metrics = fetch_metrics(&addr);
    if let Some(c) = &mut child {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!(
        "USSD coverage journey, {} concurrent sessions, {} families, {} s per server",
        a.concurrency, families, a.seconds
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>8} {:>14}",
        "server", "hops/s", "p50 ms", "p99 ms", "errors", "server CPU/hop"
    );
    for (name, r) in [("bare hyper (fixed CON)", &bare), ("imis-gateway", &gw)] {
        println!(
            "{:<22} {:>10.0} {:>10.2} {:>10.2} {:>8} {:>11.1} us",
            name,
            r.rate(),
            r.pct(0.50),
            r.pct(0.99),
            r.errors,
            r.server_cpu * 1e6 / r.hops.max(1) as f64
        );
    }
    println!(
        "throughput ratio gateway/bare: {:.2} (goal >= 0.50); gateway p99 {:.2} ms (goal < 10 ms)",
        gw.rate() / bare.rate().max(1.0),
        gw.pct(0.99)
    );
    println!(
        "server CPU per hop, bare/gateway: {:.2} (the same ratio, measured in CPU time: less \
         sensitive to other load on the machine)",
        (bare.server_cpu / bare.hops.max(1) as f64)
            / (gw.server_cpu / gw.hops.max(1) as f64).max(f64::MIN_POSITIVE)
    );
    if let Some(ms) = server_mean_ms(&server_metrics) {
        println!("gateway's own mean time per hop (its /metrics, warm-up included): {ms:.3} ms");
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "machine: {} CPUs, load average {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
