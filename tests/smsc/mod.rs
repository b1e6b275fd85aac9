//! Test harness for the SMSC peer: the npm `smpp` 0.5.1 package driven by `smsc.js`
//! (this directory), installed here by `npm ci` on first use, started on free loopback
//! ports, and controlled over its small HTTP API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("smsc")
}

/// Installs the SMSC's npm dependencies once (several test binaries may race: a lock
/// directory serialises them).
pub fn ensure_installed() {
    let d = dir();
    if d.join("node_modules/smpp/package.json").exists() {
        return;
    }
    let lock = d.join(".install.lock");
    let start = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "npm install lock held too long"
        );
        std::thread::sleep(Duration::from_millis(200));
        if d.join("node_modules/smpp/package.json").exists() {
            return;
        }
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&d)
        .output();
    let _ = std::fs::remove_dir(&lock);
    let out = out.expect("npm is needed for the SMPP tests");
    assert!(
        out.status.success(),
        "npm ci in tests/smsc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Smsc {
    child: Child,
    pub smpp_port: u16,
    pub ctrl_port: u16,
    log: mpsc::Receiver<String>,
}

impl Smsc {
    /// Starts on free ports.
    pub fn start(env: &[(&str, &str)]) -> Smsc {
        Smsc::start_on(0, env)
    }

    /// Starts with the SMPP listener on `port` (0 = any free one).
    pub fn start_on(port: u16, env: &[(&str, &str)]) -> Smsc {
        ensure_installed();
        let mut cmd = Command::new("node");
        cmd.arg("smsc.js")
            .current_dir(dir())
            .env("SMPP_PORT", port.to_string())
            .env("CTRL_PORT", "0")
            .env("SMSC_USER", "esme")
            .env("SMSC_PASS", "secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("node is needed for the SMPP tests");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    panic!("SMSC did not start: {err}");
                }
            };
            if let Some(rest) = line.strip_prefix("SMSC ready ") {
                let port = |k: &str| -> u16 {
                    rest.split(' ')
                        .find_map(|kv| kv.strip_prefix(k))
                        .and_then(|v| v.parse().ok())
                        .expect("port in the ready line")
                };
                return Smsc {
                    smpp_port: port("smpp="),
                    ctrl_port: port("ctrl="),
                    child,
                    log: rx,
                };
            }
        }
    }

    /// The environment that points `imis-gateway serve` at this SMSC.
    pub fn gateway_env(&self) -> Vec<(String, String)> {
        vec![
            ("IMIS_GATEWAY_SMPP__ENABLED".into(), "true".into()),
            ("IMIS_GATEWAY_SMPP__HOST".into(), "127.0.0.1".into()),
            ("IMIS_GATEWAY_SMPP__PORT".into(), self.smpp_port.to_string()),
            ("IMIS_GATEWAY_SMPP__SYSTEM_ID".into(), "esme".into()),
            ("IMIS_GATEWAY_SMPP__PASSWORD".into(), "secret".into()),
            ("IMIS_GATEWAY_SMPP__RECONNECT_MIN_MS".into(), "100".into()),
            ("IMIS_GATEWAY_SMPP__RECONNECT_MAX_MS".into(), "1000".into()),
            (
                "IMIS_GATEWAY_SMPP__RESPONSE_TIMEOUT_SECS".into(),
                "3".into(),
            ),
            ("IMIS_GATEWAY_SMPP__THROTTLE_PAUSE_MS".into(), "200".into()),
            // The pause doubles per throttled answer in a row: a low cap keeps tests short.
            (
                "IMIS_GATEWAY_SMPP__THROTTLE_PAUSE_MAX_MS".into(),
                "1600".into(),
            ),
            ("IMIS_GATEWAY_SMPP__LEASE_SECS".into(), "3".into()),
        ]
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        http(self.ctrl_port, method, path, body).1
    }

    pub fn stats(&self) -> Value {
        self.call("GET", "/stats", None)
    }

    pub fn submits(&self) -> Vec<Value> {
        match self.call("GET", "/submits", None) {
            Value::Array(v) => v,
            other => panic!("submits: {other}"),
        }
    }

    pub fn config(&self, c: Value) {
        self.call("POST", "/config", Some(&c));
    }

    /// Sends an MO deliver_sm to every bound receiver; returns how many got it.
    pub fn mo(&self, mo: Value) -> u64 {
        self.call("POST", "/mo", Some(&mo))["delivered_to_sessions"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn raw(&self, hex: &str) -> u64 {
        self.call("POST", "/raw", Some(&serde_json::json!({"hex": hex})))["written_to_sessions"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn drop_sessions(&self) {
        self.call("POST", "/drop", None);
    }

    pub fn enquire_link(&self) {
        self.call("POST", "/enquire_link", None);
    }

    pub fn unbind_sessions(&self) {
        self.call("POST", "/unbind", None);
    }

    pub fn bound(&self) -> u64 {
        self.stats()["bound"].as_u64().unwrap_or(0)
    }

    /// Waits until `f(self)` holds, polling.
    pub fn wait(&self, what: &str, limit: Duration, f: impl Fn(&Smsc) -> bool) {
        let start = Instant::now();
        while !f(self) {
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; stats {}",
                self.stats()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 client (no extra dependencies, no chunked encoding to undo).
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (code, text) = http_raw(
        port,
        method,
        path,
        "application/json",
        &body.map(|b| b.to_string()).unwrap_or_default(),
    );
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, v)
}

pub fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to control API");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
