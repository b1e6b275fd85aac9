//! Test harness for the second SMSC peer: `smsc.py` (this directory) on PyPI's `smpplib`
//! 2.2.4, an SMPP implementation independent of the npm one in `tests/smsc`. Installed on
//! first use into a venv under `target/` from `requirements.txt` (pinned), started on free
//! loopback ports, controlled over the same kind of HTTP API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python (scripts/test-deps and .ci/run create it at the same place).
pub fn python() -> PathBuf {
    manifest().join("target/smsc2-venv/bin/python")
}

/// Creates the venv and installs the pinned codec once.
pub fn ensure_installed() {
    let ready = || {
        Command::new(python())
            .args(["-c", "import smpplib"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready() {
        return;
    }
    // An flock (released when the file closes, even if a test binary dies) lets one test
    // binary install while the others wait, then find it installed.
    let lock = std::fs::File::create(manifest().join("target/.smsc2-install.lock"))
        .expect("create the install lock file");
    fs2::FileExt::lock_exclusive(&lock).expect("lock the install lock file");
    if ready() {
        return;
    }
    let venv = manifest().join("target/smsc2-venv");
    let py = python();
    let steps: [(&str, Vec<&str>); 2] = [
        (
            "python3",
            vec!["-m", "venv", venv.to_str().unwrap_or_default()],
        ),
        (
            py.to_str().unwrap_or_default(),
            vec![
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                "tests/smsc2/requirements.txt",
            ],
        ),
    ];
    let mut failure = None;
    for (bin, args) in steps {
        let out = Command::new(bin)
            .args(&args)
            .current_dir(manifest())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => failure = Some(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => failure = Some(format!("{bin}: {e}")),
        }
        if failure.is_some() {
            break;
        }
    }
    drop(lock);
    if let Some(f) = failure {
        panic!("installing the second SMSC peer (tests/smsc2) failed:\n{f}");
    }
}

pub struct PySmsc {
    child: Child,
    pub smpp_port: u16,
    pub ctrl_port: u16,
}

impl PySmsc {
    pub fn start() -> PySmsc {
        ensure_installed();
        let mut child = Command::new(python())
            .arg(manifest().join("tests/smsc2/smsc.py"))
            .env("SMSC_USER", "esme")
            .env("SMSC_PASS", "secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the second SMSC peer starts");
        let mut first = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("ready line");
        let port = |k: &str| -> u16 {
            first
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {k} in {first:?}"))
        };
        PySmsc {
            smpp_port: port("smpp="),
            ctrl_port: port("ctrl="),
            child,
        }
    }

    pub fn get(&self, path: &str) -> Value {
        crate::smsc::http(self.ctrl_port, "GET", path, None).1
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        crate::smsc::http(self.ctrl_port, "POST", path, Some(body)).1
    }
}

impl Drop for PySmsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
