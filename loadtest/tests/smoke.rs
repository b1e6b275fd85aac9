//! A 3 s mixed load with all four flows against the real server binary: USSD over HTTP,
//! officer MO over HTTP and over SMPP (the loadtest is the SMSC the server binds to), and
//! signed GePG payment notifications with redeliveries. No errors, every MO answered, and
//! every bill paid is applied once by the server's own count.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LOADTEST: &str = env!("CARGO_BIN_EXE_loadtest");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The server binary: `IMIS_GATEWAY_BIN`, else built now next to the loadtest binary (a
/// no-op when `cargo test --workspace` has built it already).
fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("IMIS_GATEWAY_BIN") {
        return PathBuf::from(p);
    }
    let ok = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["build", "-q", "-p", "imis-gateway", "--bin", "imis-gateway"])
        .status()
        .expect("cargo build")
        .success();
    assert!(ok, "building imis-gateway failed");
    Path::new(LOADTEST)
        .parent()
        .expect("target dir")
        .join("imis-gateway")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    out
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in {metrics}"))
}

#[test]
fn a_mixed_load_of_all_four_flows_has_no_errors_and_applies_each_payment_once() {
    let bin = server_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let smsc = format!("127.0.0.1:{}", free_port());
    let prep = Command::new(LOADTEST)
        .args([
            "prepare",
            "--families",
            "50",
            "--bills",
            "400",
            "--officers",
            "5",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--keys-dir")
        .arg(&keys)
        .args(["--smsc-listen", &smsc])
        .output()
        .expect("loadtest prepare");
    assert!(
        prep.status.success(),
        "{}",
        String::from_utf8_lossy(&prep.stderr)
    );
    let env_file = std::fs::read_to_string(keys.join("server.env")).expect("server.env");

    let mut cmd = Command::new(&bin);
    cmd.current_dir(repo_root())
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .env("IMIS_GATEWAY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for line in env_file.lines() {
        let (k, v) = line.split_once('=').expect("KEY=value");
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn imis-gateway");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("imis-gateway ready on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("server ready");

    let out = Command::new(LOADTEST)
        .args(["--target", &format!("http://{addr}")])
        .args(["--duration", "3", "--families", "50", "--json"])
        .args(["--ussd-concurrency", "2", "--sms-rate", "4"])
        .args([
            "--smsc-rate",
            "5",
            "--smsc-officers",
            "5",
            "--smsc-listen",
            &smsc,
        ])
        .args([
            "--gepg-rate",
            "10",
            "--gepg-duplicate",
            "0.3",
            "--gepg-bills",
            "400",
        ])
        .arg("--gepg-key")
        .arg(keys.join("gepg.p12"))
        .output()
        .expect("loadtest run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let flows = report["flows"].as_array().expect("flows");
    let names: Vec<&str> = flows.iter().filter_map(|f| f["flow"].as_str()).collect();
    assert_eq!(
        names,
        ["ussd", "sms http", "gepg payments", "officer MO over SMPP"]
    );
    for f in flows {
        assert!(f["ops"].as_u64().unwrap_or(0) > 0, "{f}");
        assert_eq!(f["errors"], serde_json::json!({}), "{f}");
    }
    let smpp = &flows[3];
    assert_eq!(smpp["ops"], smpp["completed"], "every MO answered: {smpp}");
    let gepg = &flows[2];
    let paid = gepg["notes"]["bills paid"].as_u64().expect("bills paid");
    let again = gepg["notes"]["redeliveries acked"]
        .as_u64()
        .expect("redeliveries");
    assert!(paid >= 10 && again > 0, "{gepg}");

    // The server's own count: each bill applied once, every redelivery a duplicate.
    let metrics = http_get(&addr, "/payments/metrics");
    assert_eq!(counter(&metrics, "gepg_payments_applied_total"), paid);
    assert_eq!(counter(&metrics, "gepg_payments_duplicate_total"), again);
    assert_eq!(counter(&metrics, "gepg_payments_conflict_total"), 0);
    drop(server);
}
