//! The SMS cost guard against the real binary (issue 14: "HELP to unknown numbers ... queue
//! paid SMS to those numbers (20 spoofed senders: queue 22 → 42)").
//!
//! 25 spoofed unknown senders send HELP with `[sms_guard] unknown_per_hour = 10`: 10 HELP
//! SMS reach the SMSC peer, `/sms/metrics` counts 15 suppressed, one warning is logged, and
//! an officer and a family's phone still get their HELP. A USSD renewal from a phone not
//! linked to the family, over the cap, shows the control number on screen and queues no SMS.

mod common;
mod smsc;

use std::time::{Duration, Instant};

use common::officer::seeded_dir;
use common::Server;
use smsc::Smsc;

#[path = "common/inbound_post.rs"]
mod inbound_post;
use inbound_post::post_inbound;

fn spoofed(n: usize) -> String {
    format!("2557990{n:05}")
}

/// SMS the peer received for any of the spoofed senders.
fn to_spoofed(smsc: &Smsc) -> usize {
    common::sms::messages(&smsc.submits())
        .iter()
        .filter(|(to, _)| to.starts_with("2557990"))
        .count()
}

#[test]
fn help_to_unknown_senders_stops_at_the_cap_and_the_metric_counts_the_rest() {
    let smsc = Smsc::start(&[]);
    let dir = seeded_dir();
    let server = start(&smsc, dir.path(), "10");
    for n in 0..25 {
        post_inbound(&server, &spoofed(n), "HELP", &format!("spoof-{n}"));
    }
    // An officer and a family's head are not unknown: their HELP goes out over the cap.
    post_inbound(&server, "255754000001", "HELP", "officer");
    post_inbound(&server, "255754100001", "HELP", "head");
    smsc.wait("officer and head replies", Duration::from_secs(30), |s| {
        let m = common::sms::messages(&s.submits());
        ["255754000001", "255754100001"]
            .iter()
            .all(|p| m.iter().any(|(to, _)| to == p))
    });
    // Everything queued before them has been sent by now; give stragglers a moment.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        to_spoofed(&smsc),
        10,
        "{:?}",
        common::sms::messages(&smsc.submits())
    );
    let (_, metrics) = smsc::http_raw(server.addr.port(), "GET", "/sms/metrics", "text/plain", "");
    assert!(
        metrics.contains("imis_sms_cost_guard_suppressed_total 15\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imis_sms_cost_guard_sent_total 10\n"),
        "{metrics}"
    );
    let logs = server.logs();
    let warnings: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("SMS cost guard"))
        .collect();
    assert_eq!(warnings.len(), 1, "rate-limited to one line: {warnings:?}");
    assert!(
        !warnings[0].contains("2557990"),
        "no phone number in the log: {}",
        warnings[0]
    );
    server.terminate();
    smsc.kill();
}

/// Starts the demo world with `[sms_guard] unknown_per_hour = cap`, bound to the peer.
fn start(smsc: &Smsc, dir: &std::path::Path, cap: &str) -> Server {
    let mut env = smsc.gateway_env();
    env.push((
        "IMIS_GATEWAY_SMS_GUARD__UNKNOWN_PER_HOUR".into(),
        cap.into(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(dir, &[], &env);
    smsc.wait("bound", Duration::from_secs(30), |s| s.bound() > 0);
    server
}

#[test]
fn a_ussd_renewal_from_a_phone_not_of_the_family_shows_the_number_but_sends_no_sms_over_the_cap() {
    let smsc = Smsc::start(&[]);
    let dir = seeded_dir();
    let server = start(&smsc, dir.path(), "1");
    // The one SMS the hour allows goes to the first unknown phone.
    post_inbound(&server, &spoofed(1), "HELP", "first");
    smsc.wait("HELP", Duration::from_secs(30), |s| to_spoofed(s) == 1);
    let u = common::ussd::Ussd::new(&server);
    let stranger = spoofed(2);
    let mut screen = String::new();
    for text in [
        "",
        "2",
        "2*1",
        "2*1*100000014",
        "2*1*100000014*1",
        "2*1*100000014*1*1",
    ] {
        screen = u.at("guard-renew", &stranger, "*152*00#", text).1;
    }
    let cn = common::ussd::control_number(&screen);
    assert!(cn.len() >= 10, "{screen}");
    let (_, metrics) = smsc::http_raw(server.addr.port(), "GET", "/sms/metrics", "text/plain", "");
    assert!(
        metrics.contains("imis_sms_cost_guard_suppressed_total 1\n"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(to_spoofed(&smsc), 1, "no SMS to the stranger");
    server.terminate();
    smsc.kill();
}
