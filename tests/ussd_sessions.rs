//! Session life through the real server: drop and resume (inside and after the window),
//! gateway end, TTL expiry, a slow action answered with a holding screen and an SMS, and
//! menus reloaded on SIGHUP without dropping live sessions.

mod common;

use std::time::Duration;

use common::ussd::{queued_sms, AtSession, Ussd};
use common::{signal, Server};

const NEEMA: &str = "255754100002";
const STRANGER: &str = "255700000009";

/// Walks a renewal up to the confirm screen.
fn to_confirm<'a>(u: &'a Ussd, id: &str) -> AtSession<'a> {
    let (mut s, _) = AtSession::dial(u, id, NEEMA);
    s.send("2");
    s.send("1");
    s.send("100000014");
    let (_, ask) = s.send("1");
    assert!(ask.contains("Kulipia CHF01"), "{ask}");
    s
}

#[test]
fn a_dropped_session_resumes_within_the_window_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[("IMIS_GATEWAY_USSD__RESUME_WINDOW_SECS", "2")],
    );
    let u = Ussd::new(&server);
    // Dropped at the confirm screen (the network never says so): redial at once.
    let _dropped = to_confirm(&u, "drop-1");
    let (mut s, prompt) = AtSession::dial(&u, "drop-2", NEEMA);
    assert!(
        prompt.contains("1 Endelea") && prompt.contains("2 Anza upya"),
        "{prompt}"
    );
    let (_, bad) = s.send("5");
    assert!(
        bad.starts_with("Chaguo si sahihi.") && bad.contains("1 Endelea"),
        "{bad}"
    );
    let (_, ask) = s.send("1");
    assert!(
        ask.contains("Kulipia CHF01 kwa familia ya 100000014"),
        "{ask}"
    );
    let (end, done) = s.send("1");
    assert!(end && done.contains("Namba ya malipo: 99"), "{done}");
    // A completed journey is never offered again.
    let (_, home) = AtSession::dial(&u, "drop-3", NEEMA);
    assert!(home.contains("Karibu"), "{home}");

    // "Start again" goes home.
    let _dropped = to_confirm(&u, "drop-4");
    let (mut s, prompt) = AtSession::dial(&u, "drop-5", NEEMA);
    assert!(prompt.contains("1 Endelea"), "{prompt}");
    let (_, home) = s.send("2");
    assert!(home.contains("Karibu"), "{home}");

    // Sessions superseded by a redial count as abandoned (drop-1, -3, -4, and -5 by the JSON
    // dial below). The gateway reports the end (JSON "end"): resumable, but not after the window.
    u.json("drop-6", NEEMA, "begin", "1*1", 0);
    let (end, _) = u.json("drop-6", NEEMA, "end", "", 1);
    assert!(end);
    std::thread::sleep(Duration::from_millis(2500));
    let (_, home) = u.json("drop-7", NEEMA, "begin", "", 0);
    assert!(home.contains("Karibu"), "window passed: {home}");
    let m = u.metrics();
    assert!(
        m.contains("ussd_sessions_total{gateway=\"json\",event=\"abandoned\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ussd_sessions_total{gateway=\"africastalking\",event=\"abandoned\"} 4"),
        "{m}"
    );
}

#[test]
fn an_idle_session_times_out_and_a_redial_may_resume_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[("IMIS_GATEWAY_USSD__SESSION_TTL_SECS", "1")],
    );
    let u = Ussd::new(&server);
    let (mut s, _) = AtSession::dial(&u, "ttl-1", STRANGER);
    s.send("1");
    s.send("1");
    std::thread::sleep(Duration::from_millis(1600));
    let (end, late) = s.send("070707070");
    assert!(end && late.contains("Muda wa kikao umekwisha"), "{late}");
    // The re-sent timed-out hop gets the same answer.
    assert_eq!(s.resend(), (true, late));
    let (mut s, prompt) = AtSession::dial(&u, "ttl-2", STRANGER);
    assert!(prompt.contains("1 Endelea"), "{prompt}");
    let (_, enter) = s.send("1");
    assert!(enter.contains("Weka namba ya CHF"), "{enter}");
    let m = u.metrics();
    assert!(m.contains("event=\"timed_out\"} 1"), "{m}");
}

#[test]
fn a_slow_action_gets_a_holding_screen_and_its_result_by_sms() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[
            ("IMIS_GATEWAY_USSD__FAULT_ACTION", "coverage"),
            ("IMIS_GATEWAY_USSD__FAULT_ACTION_DELAY_MS", "1500"),
            ("IMIS_GATEWAY_USSD__HOP_BUDGET_MS", "200"),
        ],
    );
    let u = Ussd::new(&server);
    let started = std::time::Instant::now();
    let (end, holding) = u.at("slow-1", STRANGER, "*152*00#", "1*1*070707070");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "answered within budget"
    );
    assert!(
        end && holding.contains("Tutakutumia majibu kwa SMS"),
        "{holding}"
    );
    // Other actions are not delayed.
    let (_, families) = u.at("slow-2", NEEMA, "*152*00#", "1*2");
    assert!(families.contains("Neema M."), "{families}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(u
        .metrics()
        .contains("ussd_late_results_total{gateway=\"africastalking\"} 1"));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let sms = queued_sms(dir.path());
    assert!(
        sms.iter()
            .any(|t| t.starts_with("CHF: majibu") && t.contains("Juma H. A")),
        "{sms:?}"
    );
}

#[test]
fn sighup_reloads_menus_and_live_sessions_survive() {
    let dir = tempfile::tempdir().unwrap();
    let menus = dir.path().join("menus");
    std::fs::create_dir(&menus).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("menus");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&p, menus.join(p.file_name().unwrap())).unwrap();
        }
    }
    let store = dir.path().join("store");
    let server = Server::start(
        &store,
        &["--demo"],
        &[("IMIS_GATEWAY_USSD__MENUS_DIR", menus.to_str().unwrap())],
    );
    let u = Ussd::new(&server);
    let (mut live, _) = AtSession::dial(&u, "hup-1", STRANGER);
    live.send("3");
    let (mut on_home, _) = AtSession::dial(&u, "hup-2", "255700000008");

    // Rename the home greeting and drop the control-number journey.
    let main = std::fs::read_to_string(menus.join("main.toml")).unwrap();
    let main = main
        .replace("Karibu CHF iliyoboreshwa", "Karibu CHF (toleo jipya)")
        .replace(
            "  { key = \"3\", sw = \"Namba yangu ya malipo\", en = \"My control number\", next = \"cn\" },\n",
            "",
        );
    std::fs::write(menus.join("main.toml"), main).unwrap();
    std::fs::remove_file(menus.join("control_number.toml")).unwrap();
    signal(server.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));

    let (_, fresh) = AtSession::dial(&u, "hup-3", "255700000007");
    assert!(
        fresh.contains("toleo jipya") && !fresh.contains("3 Namba"),
        "{fresh}"
    );
    // The live session's screen is gone: back home, with a notice.
    let (end, restarted) = live.send("1");
    assert!(
        !end && restarted.starts_with("Menyu imebadilika"),
        "{restarted}"
    );
    assert!(restarted.contains("toleo jipya"), "{restarted}");
    // A session on a screen that still exists just goes on.
    let (_, cov) = on_home.send("1");
    assert!(cov.contains("Angalia bima kwa"), "{cov}");

    // A broken menu set is refused and the running one kept.
    std::fs::write(menus.join("broken.toml"), "[screens.x]\ntype = \"menu\"\n").unwrap();
    signal(server.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    let (_, still) = AtSession::dial(&u, "hup-4", "255700000006");
    assert!(still.contains("toleo jipya"), "{still}");
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(
        logs.iter().any(|l| l.contains("menus reload refused")),
        "{}",
        logs.join("\n")
    );
}
