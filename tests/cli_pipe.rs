//! Issue 15 item 8: a command whose stdout is a pipe the reader already closed
//! (`imis-gateway jobs run … --dry-run | head`) ends quietly, never with Rust's
//! "failed printing to stdout: Broken pipe" panic and exit 101.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

/// Runs the binary with stdout a pipe whose read end is closed before it starts, so the
/// first write fails deterministically. Returns (exit code or signal, stderr).
fn run_into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(common::BIN)
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), err)
}

#[test]
fn commands_writing_to_a_closed_pipe_exit_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = common::run(
        &[
            "demo-data",
            "--families",
            "30",
            "--data-dir",
            d,
            "--today",
            "2026-03-01",
        ],
        &[],
    );
    assert!(out.status.success());
    for args in [
        &["jobs", "list", "--data-dir", d][..],
        &[
            "jobs",
            "run",
            "family-reminders",
            "--date",
            "2026-03-05",
            "--dry-run",
            "--data-dir",
            d,
        ][..],
    ] {
        let (code, err) = run_into_closed_pipe(args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_ne!(code, Some(101), "{args:?} exited as a panic: {err}");
    }
}
