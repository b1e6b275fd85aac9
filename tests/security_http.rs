//! The HTTP edge as an attacker on the operator's network meets it (issue 14), against the
//! real binary: the GePG simulator only when asked for, inbound SMS authenticated, body and
//! text caps, connection limits and timeouts, and the admin listener (token, reconciliation
//! bounds and rate limit, officer unlock on a running server).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::ussd::{walk, Dialog, Gw, Ussd};
use common::{http_raw, Server, ADMIN_TOKEN, BIN};
use imis_gateway::demo::{
    DemoOptions, DEMO_OFFICER_CODE, DEMO_OFFICER_PHONE, DEMO_OFFICER_PIN, EXPIRED_CHFID,
};
use imis_gateway::officer::audit;
use imis_gateway::sms::inbound;
use imis_gateway::store::{Store, StoreOptions};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("Content-Type", "application/json");
const HMAC_SECRET: &str = "aggregator-hmac-secret-0123";

fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (code, body) = http_raw(server.addr, "GET", path, &[], b"");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    http_raw(server.addr, "POST", path, headers, body)
}

fn mo(id: &str, text: &str) -> String {
    json!({"from": "255754999001", "to": "15200", "text": text, "id": id}).to_string()
}

fn stored_mos(dir: &std::path::Path) -> Vec<String> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    inbound::all(&store)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

/// The SMS outbox depth (replies wait there: no SMPP in these tests).
fn sms_queued(server: &Server) -> u64 {
    let (_, m) = http_raw(server.addr, "GET", "/sms/metrics", &[], b"");
    m.lines()
        .find_map(|l| l.strip_prefix("imis_sms_queue_depth "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no queue depth in {m}"))
}

/// `n` connections that never send a byte.
fn idle_connections(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    imis_gateway::payments::mobile::hmac_hex(secret.as_bytes(), body).unwrap()
}

/// No `[gepg]` settings: payments are off and say why, `/gepg-sim/*` does not exist, and a
/// USSD renewal still ends on a screen (the bill waits for GePG to be configured).
#[test]
fn without_gepg_settings_payments_are_disabled_and_the_simulator_is_absent() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        imis_gateway::demo::seed_if_empty(&store, &DemoOptions::default()).unwrap();
        store.flush().unwrap();
    }
    let server = Server::start(dir.path(), &[], &[("IMIS_GATEWAY_GEPG__MODE", "disabled")]);
    let (code, health) = get_json(&server, "/health");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["components"]["gepg"], "disabled", "{health}");
    let why = health["gepg"]["disabled"].as_str().unwrap_or_default();
    assert!(why.contains("disabled"), "no reason on /health: {health}");
    for path in [
        "/gepg-sim/pay",
        "/gepg-sim/api/bill/sigqrequest",
        "/gepg-sim/api/reconciliations/sig_sp_qrequest",
    ] {
        let body = json!({"control_number": "991110000025"}).to_string();
        let (code, answer) = post(&server, path, &[JSON], body.as_bytes());
        assert_eq!(code, 404, "{path}: {answer}");
    }
    let ussd = Ussd::new(&server);
    let (mut s, _) = Dialog::dial(&ussd, Gw::Json, "no-gepg-1", "255754999002");
    walk(&mut s, &["2", "1", EXPIRED_CHFID, "1"]);
    let (end, screen) = s.send("1");
    assert!(end && !screen.trim().is_empty(), "{screen}");
    assert!(
        common::ussd::control_number_in(&screen).is_none(),
        "a control number without GePG: {screen}"
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(!logs.iter().any(|l| l.contains("panicked")));
}

/// The simulator pays anything for anyone: it refuses an address others can reach unless
/// explicitly allowed.
#[test]
fn the_simulator_refuses_a_reachable_listen_address_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (args, env) in [
        (
            vec!["serve", "--data-dir", d, "--listen", "0.0.0.0:0"],
            vec![("IMIS_GATEWAY_GEPG__MODE", "simulator")],
        ),
        (
            vec!["serve", "--demo", "--data-dir", d, "--listen", "0.0.0.0:0"],
            vec![],
        ),
    ] {
        let out = common::run(&args, &env);
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("simulator_allow_remote"), "{err}");
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--data-dir", d, "--listen", "0.0.0.0:0"])
        .env("IMIS_GATEWAY_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let server = Server::spawn(
        cmd,
        dir.path(),
        &[("IMIS_GATEWAY_GEPG__SIMULATOR_ALLOW_REMOTE", "true")],
    );
    assert!(server.addr.ip().is_unspecified());
    server.terminate();
}

/// A spoofed MO (no credential, a wrong HMAC, a wrong shared secret) is refused with 401
/// and nothing is stored; the aggregator's own signature is accepted.
#[test]
fn spoofed_inbound_sms_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[
            ("IMIS_GATEWAY_INBOUND_SMS__SCHEME", "hmac"),
            ("IMIS_GATEWAY_INBOUND_SMS__SECRET", HMAC_SECRET),
        ],
    );
    let spoof = mo("spoof-1", "STATUS");
    let wrong_sig = hmac_hex("not-the-secret", spoof.as_bytes());
    let refused: [&[(&str, &str)]; 4] = [
        &[JSON],
        &[JSON, ("X-Signature", &wrong_sig)],
        &[JSON, ("X-Signature", "")],
        &[JSON, ("X-Gateway-Secret", HMAC_SECRET)],
    ];
    for headers in refused {
        let (code, answer) = post(&server, "/sms/inbound", headers, spoof.as_bytes());
        assert_eq!(code, 401, "{headers:?}: {answer}");
    }
    let good = mo("real-1", "HELP");
    let sig = hmac_hex(HMAC_SECRET, good.as_bytes());
    let (code, answer) = post(
        &server,
        "/sms/inbound",
        &[JSON, ("X-Signature", &sig)],
        good.as_bytes(),
    );
    assert_eq!(code, 200, "{answer}");
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(
        !logs
            .iter()
            .any(|l| l.contains(HMAC_SECRET) || l.contains(&wrong_sig)),
        "a secret or signature in the logs"
    );
    assert_eq!(stored_mos(dir.path()), vec!["HELP".to_string()]);
}

/// No aggregator configured: the route is off (503, said at start-up), nothing stored.
#[test]
fn inbound_sms_without_a_configured_secret_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("IMIS_GATEWAY_INBOUND_SMS__SECRET", "")]);
    let (name, value) = common::sms::inbound_headers();
    let body = mo("off-1", "HELP");
    let (code, answer) = post(
        &server,
        "/sms/inbound",
        &[JSON, (name, value)],
        body.as_bytes(),
    );
    assert_eq!(code, 503, "{answer}");
    let (_, logs) = server.terminate();
    assert!(
        logs.iter()
            .any(|l| l.contains("inbound SMS over HTTP is off")),
        "no start-up line: {}",
        logs.join("\n")
    );
    assert!(stored_mos(dir.path()).is_empty());
}

/// A 2 MB text (and one just over the text cap) → 413, nothing stored.
#[test]
fn oversized_sms_texts_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let auth = common::sms::inbound_headers();
    for (id, len) in [("big-1", 2 * 1024 * 1024), ("big-2", 3000)] {
        let body = mo(id, &"A".repeat(len));
        let (code, answer) = post(&server, "/sms/inbound", &[JSON, auth], body.as_bytes());
        assert_eq!(code, 413, "{len} bytes: {answer}");
    }
    let ok = mo("fits-1", &"B".repeat(600));
    let (code, answer) = post(&server, "/sms/inbound", &[JSON, auth], ok.as_bytes());
    assert_eq!(code, 200, "{answer}");
    server.terminate();
    let texts = stored_mos(dir.path());
    assert_eq!(texts.len(), 1, "{} MOs stored", texts.len());
    assert_eq!(texts[0].len(), 600);
}

/// `serve` under systemd's default soft limit of 1024 open files: 1,100 idle connections
/// and `/health` still answers within a second.
#[test]
fn eleven_hundred_idle_connections_do_not_starve_health() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -Sn 1024 && exec \"$@\"", "sh", BIN, "serve"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("IMIS_GATEWAY_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let server = Server::spawn(cmd, dir.path(), &[]);
    let idle = idle_connections(&server, 1100);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let (code, body) = get_json(&server, "/health");
    let took = start.elapsed();
    assert_eq!(code, 200, "{body}");
    assert!(took < Duration::from_secs(1), "/health took {took:?}");
    drop(idle);
    server.terminate();
}

/// At the connection cap, new connections wait (one warning, not one per connection) and
/// are served once the idle ones time out.
#[test]
fn the_connection_cap_logs_once_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[],
        &[
            ("IMIS_GATEWAY_SERVER__MAX_CONNECTIONS", "20"),
            ("IMIS_GATEWAY_SERVER__HEADER_READ_TIMEOUT_SECS", "2"),
        ],
    );
    let idle = idle_connections(&server, 40);
    let start = Instant::now();
    let (code, _) = get_json(&server, "/health");
    assert_eq!(code, 200);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    drop(idle);
    let logs = server.logs();
    let warned = logs
        .iter()
        .filter(|l| l.contains("connection cap reached"))
        .count();
    assert_eq!(warned, 1, "{}", logs.join("\n"));
    server.terminate();
}

/// Half-sent headers (slowloris) and idle connections are closed after the header timeout.
#[test]
fn slow_headers_and_idle_connections_are_closed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[],
        &[("IMIS_GATEWAY_SERVER__HEADER_READ_TIMEOUT_SECS", "2")],
    );
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(server.addr).unwrap();
    for (what, s) in [("slow headers", &mut slow), ("idle", &mut idle)] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 512];
        // Trickling one more header line does not reset the clock.
        let _ = s.write_all(b"X-A: b\r\n");
        let closed = match s.read(&mut buf) {
            Ok(n) => !String::from_utf8_lossy(&buf[..n]).contains("200 OK"),
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        assert!(closed, "{what}: not closed");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            start.elapsed()
        );
    }
    let (code, _) = get_json(&server, "/health");
    assert_eq!(code, 200);
    server.terminate();
}

/// Administrative routes live only on the admin listener, behind the token; reconciliation
/// dates are bounded and requests rate-limited.
#[test]
fn admin_routes_need_the_admin_listener_and_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"], &[]);
    let admin = server.admin.expect("admin listener");
    let today = (chrono::Utc::now() + chrono::Duration::hours(3)).date_naive();
    let day = |d: chrono::NaiveDate| json!({"date": d.to_string()}).to_string();
    for (method, path) in [
        ("POST", "/payments/reconcile"),
        ("POST", "/admin/officers/EO0001/unlock"),
        ("GET", "/admin/status"),
    ] {
        let (code, _) = http_raw(server.addr, method, path, &[JSON], day(today).as_bytes());
        assert_eq!(code, 404, "{path} on the public listener");
        for auth in [
            vec![JSON],
            vec![JSON, ("Authorization", "Bearer wrong-token")],
        ] {
            let (code, _) = http_raw(admin, method, path, &auth, day(today).as_bytes());
            assert_eq!(code, 401, "{path} {auth:?}");
        }
    }
    let (code, status) = server.admin_call("GET", "/admin/status", "");
    assert_eq!(code, 200, "{status}");
    let future = today + chrono::Duration::days(2);
    let old = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
    let far = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
    for d in [old, future, far] {
        let (code, answer) = server.admin_call("POST", "/payments/reconcile", &day(d));
        assert_eq!(code, 400, "{d}: {answer}");
    }
    // The default burst is 3: three go to (the simulated) GePG, the fourth waits.
    for _ in 0..3 {
        let (code, answer) = server.admin_call("POST", "/payments/reconcile", &day(today));
        assert_eq!(code, 200, "{answer}");
    }
    let (code, answer) = server.admin_call("POST", "/payments/reconcile", &day(today));
    assert_eq!(code, 429, "{answer}");
    let (_, logs) = server.terminate();
    assert!(
        !logs.iter().any(|l| l.contains(ADMIN_TOKEN)),
        "the token in the logs"
    );
}

/// Without a token the admin listener does not start, and says so.
#[test]
fn no_admin_token_no_admin_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("IMIS_GATEWAY_ADMIN__TOKEN", "")]);
    assert!(server.admin.is_none());
    let (_, logs) = server.terminate();
    assert!(
        logs.iter().any(|l| l.contains("admin listener off")),
        "{}",
        logs.join("\n")
    );
}

/// Locked out by wrong PINs (over authenticated `/sms/inbound`), unlocked over the admin
/// listener while the server runs: the right PIN then works.
#[test]
fn an_administrator_unlocks_an_officer_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"], &[]);
    let auth = common::sms::inbound_headers();
    let send = |id: &str, pin: &str| {
        let body = json!({
            "from": DEMO_OFFICER_PHONE, "to": "15200", "id": id,
            "text": format!("HUISHA {pin} {EXPIRED_CHFID}"),
        })
        .to_string();
        let before = sms_queued(&server);
        let (code, answer) = post(&server, "/sms/inbound", &[JSON, auth], body.as_bytes());
        assert_eq!(code, 200, "{answer}");
        // The officer worker runs commands after the MO is stored: wait for the reply.
        let start = Instant::now();
        while sms_queued(&server) <= before {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no reply to {id}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for i in 0..5 {
        send(&format!("ul-wrong-{i}"), &format!("{:04}", 9100 + i));
    }
    send("ul-locked", DEMO_OFFICER_PIN);
    let path = format!("/admin/officers/{DEMO_OFFICER_CODE}/unlock");
    let (code, answer) = server.admin_call("POST", &path, "");
    assert_eq!(code, 200, "{answer}");
    let (code, _) = server.admin_call("POST", "/admin/officers/EO9999/unlock", "");
    assert_eq!(code, 404);
    send("ul-after", DEMO_OFFICER_PIN);
    std::thread::sleep(Duration::from_secs(2));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let eo = store.officer_by_code(DEMO_OFFICER_CODE).unwrap().unwrap();
    let mut renews = audit::of_officer(&store, eo.id).unwrap();
    renews.retain(|e| e.command.starts_with("renew"));
    renews.sort_by_key(|e| (e.received_ms, e.mo_id));
    assert_eq!(renews.len(), 7, "{renews:#?}");
    assert!(renews[..5].iter().all(|e| !e.ok), "{renews:#?}");
    assert!(
        !renews[5].ok,
        "the right PIN passed the lockout: {:?}",
        renews[5]
    );
    assert!(
        renews[6].ok,
        "still locked after the admin unlock: {:?}",
        renews[6]
    );
}
