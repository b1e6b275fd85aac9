//! Session life through the real server, over both adapters: drop and resume (inside and
//! after the window), TTL expiry, a slow action answered with a holding screen and an SMS, a
//! re-sent hop racing its original, and menus reloaded on SIGHUP without dropping live
//! sessions.

mod common;

use std::time::{Duration, Instant};

use common::ussd::{control_number, metric, queued_sms, walk, Dialog, Gw, Ussd};
use common::{signal, Server};
use imis_gateway::domain::PolicyStatus;

const NEEMA: &str = "255754100002";
const JUMA: &str = "255754100001";
const STRANGER: &str = "255700000009";
const OTHER: &str = "255700000008";

/// Walks a renewal of Neema's family up to the confirm screen.
fn to_confirm<'a>(u: &'a Ussd, gw: Gw, id: &str) -> Dialog<'a> {
    let (mut s, _) = Dialog::dial(u, gw, id, NEEMA);
    let (_, ask) = walk(&mut s, &["2", "1", "100000014", "1"]);
    assert!(ask.contains("Kulipia CHF01"), "{gw:?}: {ask}");
    s
}

/// Idle renewals of the family whose head is `chfid`, in a stopped server's store.
fn idle_renewals(dir: &std::path::Path, chfid: u32) -> usize {
    let store = imis_gateway::store::Store::open(dir, Default::default()).unwrap();
    let head = store
        .insuree_by_chfid(imis_gateway::domain::Chfid::parse(&format!("{chfid:09}")).unwrap())
        .unwrap()
        .expect("head");
    store
        .family_policies(head.family)
        .unwrap()
        .into_iter()
        .filter(|p| p.status == PolicyStatus::Idle)
        .count()
}

#[test]
fn a_dropped_session_resumes_within_the_window_and_never_renews_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[("IMIS_GATEWAY_USSD__RESUME_WINDOW_SECS", "2")],
    );
    let u = Ussd::new(&server);
    let mut cns = Vec::new();
    for gw in Gw::BOTH {
        // Dropped at the confirm screen; AT's network says nothing, JSON's says abort.
        let mut dropped = to_confirm(&u, gw, "drop-1");
        if gw == Gw::Json {
            dropped.drop_by_network();
        }
        let (mut s, prompt) = Dialog::dial(&u, gw, "drop-2", NEEMA);
        assert!(
            prompt.contains("1 Endelea") && prompt.contains("2 Anza upya"),
            "{gw:?}: {prompt}"
        );
        let (_, bad) = s.send("5");
        assert!(
            bad.starts_with("Chaguo si sahihi.") && bad.contains("1 Endelea"),
            "{bad}"
        );
        let (_, ask) = s.send("1");
        assert!(
            ask.contains("Kulipia CHF01 kwa familia ya 100000014"),
            "{gw:?}: {ask}"
        );
        // Back still works after a resume: the history came with it.
        let (_, products) = s.send("0");
        assert!(products.contains("CHF01 TZS 30,000"), "{products}");
        let (end, done) = walk(&mut s, &["1", "1"]);
        assert!(
            end && done.contains("Namba ya malipo: 99"),
            "{gw:?}: {done}"
        );
        cns.push(control_number(&done));
        // A completed journey is never offered again.
        let (_, home) = Dialog::dial(&u, gw, "drop-3", NEEMA);
        assert!(home.contains("Karibu"), "{gw:?}: {home}");

        // Dropped again at the confirm screen, resumed, confirmed: the waiting renewal.
        let _dropped = to_confirm(&u, gw, "drop-4");
        let (mut s, prompt) = Dialog::dial(&u, gw, "drop-5", NEEMA);
        assert!(prompt.contains("1 Endelea"), "{prompt}");
        let (end, again) = walk(&mut s, &["1", "1"]);
        assert!(end && again.contains(&cns[0]), "{gw:?}: {again}");

        // "Start again" goes home.
        let _dropped = to_confirm(&u, gw, "drop-6");
        let (mut s, prompt) = Dialog::dial(&u, gw, "drop-7", NEEMA);
        assert!(prompt.contains("1 Endelea"), "{prompt}");
        let (_, home) = s.send("2");
        assert!(home.contains("Karibu"), "{home}");
        // A dial string says what the member wants: no prompt even with a dropped journey.
        s.drop_by_network();
        let _dropped = to_confirm(&u, gw, "drop-8");
        let (mut s, (_, direct)) = Dialog::dial_with(&u, gw, "drop-9", NEEMA, "*152*00#", "1*1");
        assert!(direct.contains("Weka namba ya CHF"), "{gw:?}: {direct}");
        let (end, bye) = walk(&mut s, &["100000014", "2"]);
        assert!(end && bye.contains("Asante"), "{bye}");
    }
    assert_eq!(cns[0], cns[1], "the second adapter found the first renewal");
    let m = u.metrics();
    // Per adapter: drop-1 (silently over AT, by an abort over JSON), drop-3 (left at home),
    // drop-4 and drop-6 superseded by a redial, drop-7 dropped by the network, drop-8
    // superseded by drop-9.
    for gw in Gw::BOTH {
        let series = format!(
            "ussd_sessions_total{{gateway=\"{}\",event=\"abandoned\"}}",
            gw.label()
        );
        assert_eq!(metric(&m, &series), 6, "{gw:?}: {m}");
    }
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert_eq!(idle_renewals(dir.path(), 100000014), 1);
}

#[test]
fn after_the_resume_window_a_redial_starts_at_home() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[("IMIS_GATEWAY_USSD__RESUME_WINDOW_SECS", "1")],
    );
    let u = Ussd::new(&server);
    let mut dropped = Vec::new();
    for gw in Gw::BOTH {
        let (mut s, _) = Dialog::dial(&u, gw, "late-1", if gw == Gw::At { JUMA } else { STRANGER });
        walk(&mut s, &["1", "1"]);
        s.drop_by_network();
        dropped.push(s);
    }
    std::thread::sleep(Duration::from_millis(1500));
    for gw in Gw::BOTH {
        let phone = if gw == Gw::At { JUMA } else { STRANGER };
        let (_, home) = Dialog::dial(&u, gw, "late-2", phone);
        assert!(
            home.contains("Karibu") && !home.contains("Endelea"),
            "{gw:?}: {home}"
        );
    }
    // The dropped sessions are over: a late hop on one is told so.
    for s in &mut dropped {
        let (end, over) = s.send("070707070");
        assert!(end && over.contains("Kikao hiki kimekwisha"), "{over}");
    }
}

#[test]
fn an_idle_session_times_out_and_a_redial_may_resume_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[
            ("IMIS_GATEWAY_USSD__SESSION_TTL_SECS", "1"),
            // These callers look up a family that is not theirs: names are shown to any
            // phone here (the default, linked phones only, is tests/security_ussd.rs's).
            ("IMIS_GATEWAY_PRIVACY__NAMES_TO", "anyone"),
        ],
    );
    let u = Ussd::new(&server);
    let phone = |gw: Gw| if gw == Gw::At { STRANGER } else { OTHER };
    let mut idle = Vec::new();
    for gw in Gw::BOTH {
        let (mut s, _) = Dialog::dial(&u, gw, "ttl-1", phone(gw));
        walk(&mut s, &["1", "1"]);
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(1600));
    for s in &mut idle {
        let (end, late) = s.send("070707070");
        assert!(
            end && late.contains("Muda wa kikao umekwisha"),
            "{:?}: {late}",
            s.gw
        );
        // The re-sent timed-out hop gets the same answer.
        assert_eq!(s.resend(), (true, late));
    }
    for gw in Gw::BOTH {
        let (mut s, prompt) = Dialog::dial(&u, gw, "ttl-2", phone(gw));
        assert!(prompt.contains("1 Endelea"), "{gw:?}: {prompt}");
        let (_, enter) = s.send("1");
        assert!(enter.contains("Weka namba ya CHF"), "{gw:?}: {enter}");
        let (_, result) = s.send("070707070");
        assert!(result.contains("Juma H. A"), "{result}");
    }
    let m = u.metrics();
    for gw in Gw::BOTH {
        let series = format!(
            "ussd_sessions_total{{gateway=\"{}\",event=\"timed_out\"}}",
            gw.label()
        );
        assert_eq!(metric(&m, &series), 1, "{gw:?}: {m}");
    }
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
            // These callers look up a family that is not theirs: names are shown to any
            // phone here (the default, linked phones only, is tests/security_ussd.rs's).
            ("IMIS_GATEWAY_PRIVACY__NAMES_TO", "anyone"),
        ],
    );
    let u = Ussd::new(&server);
    for gw in Gw::BOTH {
        let (mut s, _) = Dialog::dial(&u, gw, "slow-1", STRANGER);
        walk(&mut s, &["1", "1"]);
        let started = Instant::now();
        let (end, holding) = s.send("070707070");
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{gw:?}: answered within the budget, not after the action"
        );
        assert!(
            end && holding.contains("Tutakutumia majibu kwa SMS"),
            "{gw:?}: {holding}"
        );
        // The holding screen is the answer to a re-send too; the action does not run again.
        assert_eq!(s.resend(), (true, holding));
        // Other actions are not delayed.
        let (_, (_, families)) = Dialog::dial_with(&u, gw, "slow-2", NEEMA, "*152*00#", "1*2");
        assert!(families.contains("Neema M."), "{gw:?}: {families}");
    }
    std::thread::sleep(Duration::from_millis(2500));
    let m = u.metrics();
    for gw in Gw::BOTH {
        let series = format!("ussd_late_results_total{{gateway=\"{}\"}}", gw.label());
        assert_eq!(metric(&m, &series), 1, "{gw:?}: {m}");
    }
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let sms = queued_sms(dir.path());
    let late: Vec<&String> = sms
        .iter()
        .filter(|t| t.starts_with("CHF: majibu") && t.contains("Juma H. A"))
        .collect();
    assert_eq!(late.len(), 2, "one SMS per slow hop: {sms:?}");
}

#[test]
fn a_resent_hop_racing_its_original_gets_the_same_screen_and_runs_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--demo"],
        &[
            // Slow enough that the re-send arrives while the original is still running,
            // well inside the hop budget.
            ("IMIS_GATEWAY_USSD__FAULT_ACTION", "renew_confirm"),
            ("IMIS_GATEWAY_USSD__FAULT_ACTION_DELAY_MS", "600"),
        ],
    );
    let u = Ussd::new(&server);
    let mut screens = Vec::new();
    for gw in Gw::BOTH {
        let mut s = to_confirm(&u, gw, "race-1");
        s.stage("1");
        let s = &s;
        let (a, b) = std::thread::scope(|scope| {
            let first = scope.spawn(|| s.resend());
            std::thread::sleep(Duration::from_millis(100));
            let second = scope.spawn(|| s.resend());
            (first.join().unwrap(), second.join().unwrap())
        });
        assert_eq!(a, b, "{gw:?}");
        assert!(a.0, "{gw:?}: {}", a.1);
        screens.push(a.1);
    }
    let cn = control_number(&screens[0]);
    assert!(screens[1].contains(&cn), "{}", screens[1]);
    let m = u.metrics();
    for gw in Gw::BOTH {
        let series = format!("ussd_duplicate_hops_total{{gateway=\"{}\"}}", gw.label());
        assert_eq!(metric(&m, &series), 1, "{gw:?}: {m}");
    }
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert_eq!(idle_renewals(dir.path(), 100000014), 1);
    let sms = queued_sms(dir.path());
    assert_eq!(sms.iter().filter(|t| t.contains(&cn)).count(), 1, "{sms:?}");
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
        &[
            ("IMIS_GATEWAY_USSD__MENUS_DIR", menus.to_str().unwrap()),
            // These callers look up a family that is not theirs: names are shown to any
            // phone here (the default, linked phones only, is tests/security_ussd.rs's).
            ("IMIS_GATEWAY_PRIVACY__NAMES_TO", "anyone"),
        ],
    );
    let u = Ussd::new(&server);
    let mut on_gone_screen = Vec::new();
    let mut on_kept_screen = Vec::new();
    let mut mid_input = Vec::new();
    for (i, gw) in Gw::BOTH.into_iter().enumerate() {
        let phone = |n: u32| format!("2557000001{}{n}", i);
        let (mut live, _) = Dialog::dial(&u, gw, "hup-1", &phone(1));
        live.send("3");
        on_gone_screen.push(live);
        let (home, _) = Dialog::dial(&u, gw, "hup-2", &phone(2));
        on_kept_screen.push(home);
        let (mut typing, _) = Dialog::dial(&u, gw, "hup-3", &phone(3));
        walk(&mut typing, &["1", "1"]);
        mid_input.push(typing);
    }

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

    for (i, gw) in Gw::BOTH.into_iter().enumerate() {
        let (_, fresh) = Dialog::dial(&u, gw, "hup-4", &format!("25570000020{i}"));
        assert!(
            fresh.contains("toleo jipya") && !fresh.contains("3 Namba"),
            "{gw:?}: {fresh}"
        );
        // The live session's screen is gone: back home, with a notice.
        let (end, restarted) = on_gone_screen[i].send("1");
        assert!(
            !end && restarted.starts_with("Menyu imebadilika"),
            "{gw:?}: {restarted}"
        );
        assert!(restarted.contains("toleo jipya"), "{restarted}");
        // Sessions on screens that still exist just go on, variables and all.
        let (_, cov) = on_kept_screen[i].send("1");
        assert!(cov.contains("Angalia bima kwa"), "{gw:?}: {cov}");
        let (_, result) = mid_input[i].send("070707070");
        assert!(result.contains("Juma H. A"), "{gw:?}: {result}");
    }

    // A broken menu set is refused and the running one kept.
    std::fs::write(menus.join("broken.toml"), "[screens.x]\ntype = \"menu\"\n").unwrap();
    signal(server.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    for gw in Gw::BOTH {
        let (_, still) = Dialog::dial(&u, gw, "hup-5", JUMA);
        assert!(still.contains("toleo jipya"), "{gw:?}: {still}");
    }
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(
        logs.iter().any(|l| l.contains("menus reload refused")),
        "{}",
        logs.join("\n")
    );
}

#[test]
fn each_gateway_has_its_own_hop_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("imis-gateway.toml");
    std::fs::write(
        &config,
        r#"
[ussd]
hop_budget_ms = 5000
fault_action = "coverage"
fault_action_delay_ms = 800

[ussd.gateway_budget_ms]
json = 150

# A caller looks up a family that is not theirs (the default is tests/security_ussd.rs's).
[privacy]
names_to = "anyone"
"#,
    )
    .unwrap();
    let store = dir.path().join("store");
    let server = Server::start(
        &store,
        &["--demo", "--config", config.to_str().unwrap()],
        &[],
    );
    let u = Ussd::new(&server);
    // AT: the default budget (5 s) waits for the slow lookup and shows its result.
    let (_, (end, result)) = Dialog::dial_with(
        &u,
        Gw::At,
        "budget-1",
        STRANGER,
        "*152*00#",
        "1*1*070707070",
    );
    assert!(!end && result.contains("Juma H. A"), "{result}");
    // JSON: 150 ms, so the member is told the answer comes by SMS.
    let started = Instant::now();
    let (_, (end, holding)) = Dialog::dial_with(
        &u,
        Gw::Json,
        "budget-2",
        STRANGER,
        "*152*00#",
        "1*1*070707070",
    );
    assert!(started.elapsed() < Duration::from_millis(700));
    assert!(end && holding.contains("Tutakutumia"), "{holding}");
    std::thread::sleep(Duration::from_millis(1200));
    let m = u.metrics();
    assert_eq!(
        metric(&m, "ussd_late_results_total{gateway=\"json\"}"),
        1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "ussd_late_results_total{gateway=\"africastalking\"}"),
        0,
        "{m}"
    );
}

#[test]
fn a_control_number_on_screen_survives_a_kill_9_right_after_the_reply() {
    for gw in Gw::BOTH {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &["--demo"], &[]);
        let u = Ussd::new(&server);
        let mut s = to_confirm(&u, gw, "crash-1");
        let (end, done) = s.send("1");
        assert!(end, "{done}");
        let cn = control_number(&done);
        // No graceful shutdown: what the member saw must already be on disk.
        server.kill9();
        let store = imis_gateway::store::Store::open(dir.path(), Default::default()).unwrap();
        let payment = store
            .payment_by_control_number(&cn)
            .unwrap()
            .unwrap_or_else(|| panic!("{gw:?}: payment for {cn} lost"));
        let policy = payment.details[0].policy.expect("policy");
        assert_eq!(
            store.policy(policy).unwrap().expect("policy").status,
            PolicyStatus::Idle
        );
        drop(store);
        let sms = queued_sms(dir.path());
        assert_eq!(sms.iter().filter(|t| t.contains(&cn)).count(), 1, "{sms:?}");
    }
}
