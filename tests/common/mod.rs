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

/// A running server. Killed (SIGKILL) on drop if still running.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `imis-gateway serve` on a free port and waits until it says it is ready.
    pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("IMIS_GATEWAY_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
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
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("imis-gateway ready on ") {
                    let _ = tx.send(addr.trim().to_string());
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
        Server {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            stderr: err_rx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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

/// Runs the binary to completion with the given arguments.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run imis-gateway")
}
