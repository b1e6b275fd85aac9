//! The server as a process: start with demo data, health over HTTP, graceful stop, restart.

mod common;

use common::{run, Server};
use serde_json::Value;

fn get_json(url: &str) -> (u16, Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = reqwest::get(url).await.expect("GET");
        let code = resp.status().as_u16();
        (code, resp.json::<Value>().await.expect("json body"))
    })
}

#[test]
fn serves_health_with_demo_data_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"], &[]);
    let (code, body) = get_json(&server.url("/health"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"]["ok"], true);
    assert_eq!(body["components"]["store"], "ok");
    assert_eq!(body["components"]["smpp"], "disabled");
    assert_eq!(body["components"]["gepg"], "simulator");

    let (status, logs) = server.terminate();
    assert!(status.success(), "exit {status:?}\n{}", logs.join("\n"));
    assert!(
        logs.iter().any(|l| l.contains("stopped cleanly")),
        "{}",
        logs.join("\n")
    );

    // The seeded data survived the stop: demo-data refuses the now non-empty store,
    // and a restart without --demo does not seed again.
    let out = run(
        &[
            "demo-data",
            "--families",
            "1",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has data"));
    let again = Server::start(dir.path(), &["--demo"], &[]);
    assert!(again
        .logs()
        .iter()
        .any(|l| l.contains("demo seeding skipped")));
    let (code, _) = get_json(&again.url("/health"));
    assert_eq!(code, 200);
    let (status, _) = again.terminate();
    assert!(status.success());
}

#[test]
fn environment_overrides_reach_the_server_and_typos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("IMIS_GATEWAY_GEPG__MODE", "live")]);
    let (_, body) = get_json(&server.url("/health"));
    assert_eq!(body["components"]["gepg"], "live");
    server.terminate();

    let out = run(
        &["serve", "--data-dir", dir.path().to_str().unwrap()],
        &[("IMIS_GATEWAY_SERVER__LISTNE", "127.0.0.1:1")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listne"), "{stderr}");
}

#[test]
fn demo_data_command_fills_an_empty_store_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let args = [
        "demo-data",
        "--families",
        "25",
        "--today",
        "2026-06-30",
        "--data-dir",
        path.to_str().unwrap(),
    ];
    let out = run(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 25 generated + 3 named families.
    assert!(stdout.contains("seeded 28 families"), "{stdout}");

    let other = dir.path().join("store2");
    let out2 = run(
        &[
            "demo-data",
            "--families",
            "25",
            "--today",
            "2026-06-30",
            "--data-dir",
            other.to_str().unwrap(),
        ],
        &[],
    );
    let first_line = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .split(" in ")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        first_line(&out),
        first_line(&out2),
        "same seed and date, same data"
    );
}

/// The README's start command from another directory than the repository: the menus, SMS
/// texts and officer grammar it ships are still found, and the server becomes ready.
#[test]
fn serve_starts_from_any_working_directory() {
    use std::io::{BufRead, BufReader};
    let elsewhere = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "data",
        ])
        .current_dir(elsewhere.path())
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn imis-gateway");
    let stdout = child.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("imis-gateway ready on "));
    common::signal(child.id(), "TERM");
    let out = child.wait_with_output().expect("wait");
    assert!(ready, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        elsewhere.path().join("data").exists(),
        "the data dir is the caller's"
    );
}
