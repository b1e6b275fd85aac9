//! Test harness: runs the real `imis-gateway` binary as a child process.
#![allow(dead_code)]

pub mod ussd;

pub mod pg;

pub mod openimis_db;

pub mod mirror;

pub mod sms;

pub mod officer;

pub mod seed;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_imis-gateway");

/// The inbound-SMS secret every harness server accepts (`X-Gateway-Secret`); see
/// [`sms::inbound_headers`].
pub const SMS_SECRET: &str = "test-aggregator-secret";
/// The admin token every harness server accepts on its admin listener.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// What the harness asks of every server unless the test's own `env` says otherwise: the
/// GePG simulator (no longer the default mode), the test aggregator's secret for
/// `POST /sms/inbound` (header scheme) and the admin token.
pub const HARNESS_ENV: &[(&str, &str)] = &[
    ("IMIS_GATEWAY_GEPG__MODE", "simulator"),
    ("IMIS_GATEWAY_INBOUND_SMS__SCHEME", "header"),
    ("IMIS_GATEWAY_INBOUND_SMS__SECRET", SMS_SECRET),
    ("IMIS_GATEWAY_ADMIN__TOKEN", ADMIN_TOKEN),
];

/// A running server. Killed (SIGKILL) on drop if still running.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener (`--admin-listen 127.0.0.1:0` with [`ADMIN_TOKEN`]), when it runs.
    pub admin: Option<SocketAddr>,
    pub data_dir: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `imis-gateway serve` on a free port and waits until it says it is ready.
    /// [`HARNESS_ENV`] applies first, so a test's `env` can override any of it.
    pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(extra)
            .env("IMIS_GATEWAY_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Server::spawn(cmd, data_dir, env)
    }

    /// Runs `cmd` (a `serve` command line) with [`HARNESS_ENV`] then `env`, and waits until
    /// the server says it is ready.
    pub fn spawn(mut cmd: Command, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        for (k, v) in HARNESS_ENV.iter().chain(env) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn imis-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let (admin_tx, admin_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("imis-gateway ready on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                if let Some(addr) = line.strip_prefix("imis-gateway admin on ") {
                    let _ = admin_tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                let logs: Vec<String> = err_rx.try_iter().collect();
                panic!("server did not become ready:\n{}", logs.join("\n"));
            }
        };
        // The admin line comes before the ready line, so it is here by now if at all.
        let admin = admin_rx
            .try_recv()
            .ok()
            .map(|a| a.parse().expect("admin address"));
        Server {
            child,
            addr,
            admin,
            data_dir: data_dir.to_path_buf(),
            stderr: err_rx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin listener (send `Authorization: Bearer` [`ADMIN_TOKEN`]).
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self.admin.expect("the admin listener runs");
        format!("http://{admin}{path}")
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        signal(self.child.id(), "TERM");
        let status =
            wait_timeout(&mut self.child, Duration::from_secs(30)).expect("exited after SIGTERM");
        let logs = self.logs();
        (status, logs)
    }

    /// SIGKILL: the crash case.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(50));
        self.stderr.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the server said last: a handler panic or a refused
        // write is otherwise invisible behind "connection closed".
        if std::thread::panicking() {
            let logs: Vec<String> = self.stderr.try_iter().collect();
            for (i, line) in logs.iter().enumerate() {
                if line.contains("panicked at") {
                    eprintln!("--- server panic ---");
                    for l in logs.iter().skip(i).take(3) {
                        eprintln!("{l}");
                    }
                }
            }
            let tail = logs.len().saturating_sub(40);
            eprintln!("--- server log (last {} lines) ---", logs.len() - tail);
            for line in &logs[tail..] {
                eprintln!("{line}");
            }
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// One HTTP/1.0 request over a fresh connection; (status, body). Status 0: no answer.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // A server that refuses early may close before the whole body is written.
    let _ = s.write_all(&bytes);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    (status.unwrap_or(0), body.to_string())
}

impl Server {
    /// A JSON request to the admin listener with the harness's bearer token.
    pub fn admin_call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let admin = self.admin.expect("the admin listener runs");
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", bearer.as_str()),
        ];
        http_raw(admin, method, path, &headers, body.as_bytes())
    }
}

/// Runs the binary to completion with the given arguments.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run imis-gateway")
}

/// The files under `dir` (recursive) that hold `needle` (bytes, binary-safe): where a secret
/// reached the disk.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}
