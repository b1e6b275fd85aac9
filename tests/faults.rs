//! Fault injection: the real server binary under a fault, with traffic flowing, against
//! real peers (the npm `smpp` SMSC of tests/smsc, a throwaway PostgreSQL, a real tmpfs,
//! libfaketime). During each fault members keep using USSD (answered from the local
//! store), MOs are acknowledged only once durable, and after the fault clears everything
//! owed arrives once. Each test prints one result line:
//!
//! `FAULT <name> duration=<s> recovery=<s> owed=<n> delivered=<n> duplicates=<n>`
//!
//! Durations are short here (the default run stays near a minute and a half in debug);
//! `scripts/faults` runs the long variants in release through the environment:
//! `FAULTS_SMSC_DOWN_SECS` (default 4), `FAULTS_PG_DOWN_SECS` (20), `FAULTS_SLOW_SECS` (4).

mod common;
mod gepg_support;
mod smsc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::ussd::{control_number, walk, Dialog, Gw, Ussd};
use common::Server;
use gepg_support::env_refs as refs;
use imis_gateway::domain::Chfid;
use serde_json::{json, Value};
use smsc::Smsc;

/// The demo enrolment officer (EO0001) and his PIN.
const OFFICER: &str = "255754000001";
const PIN: &str = "1234";
/// Juma Hamisi, the demo head with an Active policy.
const MEMBER: &str = "255754100001";
const MEMBER_CHFID: &str = "070707070";

fn secs(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// The result line of one fault, for the closing note.
fn report(
    fault: &str,
    duration: Duration,
    recovery: Duration,
    owed: usize,
    delivered: usize,
    dups: usize,
) {
    println!(
        "FAULT {fault} duration={:.1}s recovery={:.2}s owed={owed} delivered={delivered} duplicates={dups}",
        duration.as_secs_f64(),
        recovery.as_secs_f64()
    );
}

/// Tallies the reply SMS owed for `markers` in `submits` ([`tally`]) and reports the fault
/// with the figures; returns (delivered, duplicates).
fn report_sms(
    fault: &str,
    duration: Duration,
    recovery: Duration,
    submits: &[Value],
    markers: &[String],
) -> (usize, usize) {
    let (delivered, dups) = tally(submits, markers);
    report(fault, duration, recovery, markers.len(), delivered, dups);
    (delivered, dups)
}

/// Rate limits off: the tests send many commands from one officer's phone.
fn base_env() -> Vec<(String, String)> {
    [
        ("IMIS_GATEWAY_LIMITS__USSD_HOPS_PER_MINUTE", "0"),
        ("IMIS_GATEWAY_LIMITS__USSD_HOP_BURST", "0"),
        ("IMIS_GATEWAY_LIMITS__SMS_MO_PER_HOUR", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// A CHFID with a valid check digit that no family has: STATUS of it gets a reply naming
/// it, so each command's reply SMS is told apart from every other.
fn unknown_chfid(i: usize) -> String {
    Chfid::from_base(90_000_000 + i as u32)
        .expect("base in range")
        .to_string()
}

/// An officer command over `POST /sms/inbound`; returns (status, body).
fn sms_inbound(u: &Ussd, id: &str, from: &str, text: &str) -> (u16, String) {
    u.rt.block_on(async {
        let r = u
            .client
            .post(format!("{}/sms/inbound", u.base))
            .header(
                common::sms::inbound_headers().0,
                common::sms::inbound_headers().1,
            )
            .json(&json!({"from": from, "to": "15200", "id": id, "text": text}))
            .send()
            .await
            .expect("POST /sms/inbound");
        (r.status().as_u16(), r.text().await.expect("body"))
    })
}

fn get(u: &Ussd, path: &str) -> (u16, Value) {
    u.rt.block_on(async {
        let r = u
            .client
            .get(format!("{}{path}", u.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

/// `/health` is 503 with the disk in `state` and `restart_required` as given.
fn assert_disk_health(u: &Ussd, state: &str, restart_required: bool) {
    let (code, health) = get(u, "/health");
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["components"]["disk"]["state"], state, "{health}");
    assert_eq!(
        health["components"]["disk"]["restart_required"], restart_required,
        "{health}"
    );
}

/// A member checks his cover over USSD: every screen must be a real answer from the store.
fn check_cover(u: &Ussd, session: &str) -> String {
    let (mut d, _) = Dialog::dial(u, Gw::At, session, MEMBER);
    let (_, screen) = walk(&mut d, &["1", MEMBER_CHFID]);
    assert!(
        !screen.contains("Samahani") && !screen.contains("Sorry"),
        "USSD not answered from the store during the fault: {screen}"
    );
    screen
}

/// The reply SMS (all parts) the SMSC accepted for each `marker`; returns
/// (markers delivered, duplicate submits).
fn tally(submits: &[Value], markers: &[String]) -> (usize, usize) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut delivered = 0;
    for m in markers {
        let hits: Vec<&Value> = submits
            .iter()
            .filter(|s| s["text"].as_str().unwrap_or("").contains(m.as_str()))
            .collect();
        if !hits.is_empty() {
            delivered += 1;
        }
        for h in hits {
            *seen
                .entry(format!("{}|{}|{}", h["to"], h["udh"], h["text"]))
                .or_default() += 1;
        }
    }
    let dups = seen.values().map(|n| n - 1).sum();
    if dups > 0 && std::env::var_os("FAULTS_VERBOSE").is_some() {
        for (k, n) in seen.iter().filter(|(_, n)| **n > 1) {
            eprintln!("submitted {n} times: {k}");
        }
    }
    (delivered, dups)
}

fn smsc_server(dir: &Path, smsc: &Smsc, extra: &[(&str, &str)]) -> Server {
    let mut env = base_env();
    env.extend(smsc.gateway_env());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // The SMSC harness leases SMS for 3 s (fast retries in tests); the server's default is
    // 60 s. FAULTS_SMPP_LEASE_SECS sets another.
    if let Ok(lease) = std::env::var("FAULTS_SMPP_LEASE_SECS") {
        env.push(("IMIS_GATEWAY_SMPP__LEASE_SECS".into(), lease));
    }
    Server::start(dir, &["--demo"], &refs(&env))
}

/// Officer STATUS commands for `range`, each acknowledged with 200 (durable).
fn send_commands(u: &Ussd, tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| {
            let chfid = unknown_chfid(i);
            let (status, body) =
                sms_inbound(u, &format!("{tag}-{i}"), OFFICER, &format!("HALI {chfid}"));
            assert_eq!(status, 200, "{body}");
            chfid
        })
        .collect()
}

/// SMSC down: the node peer is killed and restarted on the same port. Commands keep
/// arriving over HTTP while it is down (stored, acknowledged), members keep using USSD;
/// after the restart every reply is submitted once.
#[test]
fn smsc_down_then_back_on_the_same_port_delivers_every_owed_sms_once() {
    let down_for = secs("FAULTS_SMSC_DOWN_SECS", 4);
    let smsc = Smsc::start(&[]);
    let port = smsc.smpp_port;
    let dir = tempfile::tempdir().unwrap();
    let server = smsc_server(dir.path(), &smsc, &[]);
    let u = Ussd::new(&server);
    smsc.wait("bound", Duration::from_secs(30), |s| s.bound() >= 1);

    let mut markers = send_commands(&u, "before", 0..5);
    smsc.wait("replies before the fault", Duration::from_secs(30), |s| {
        tally(&s.submits(), &markers).0 == 5
    });
    let before = smsc.submits();
    smsc.kill();
    let down = Instant::now();
    let mut hops = 0;
    let mut i = 5;
    // Ten commands spread over the outage, USSD in between.
    while down.elapsed() < down_for || i < 15 {
        if i < 15 && down.elapsed() >= down_for * (i as u32 - 5) / 10 {
            markers.extend(send_commands(&u, "down", i..i + 1));
            i += 1;
        }
        check_cover(&u, &format!("down-{hops}"));
        hops += 1;
    }
    let duration = down.elapsed();
    let smsc = Smsc::start_on(port, &[]);
    let back = Instant::now();
    let recovery = wait_for(
        "every owed SMS after the restart",
        Duration::from_secs(60),
        || {
            let mut all = before.clone();
            all.extend(smsc.submits());
            tally(&all, &markers).0 == markers.len()
        },
    );
    // A second look after a pause: nothing arrives twice later either.
    std::thread::sleep(Duration::from_millis(500));
    let mut all = before.clone();
    all.extend(smsc.submits());
    let (delivered, dups) = report_sms("smsc-down", duration, recovery, &all, &markers);
    assert_eq!(delivered, markers.len());
    assert_eq!(dups, 0, "SMS submitted twice");
    assert!(hops > 0 && back.elapsed() >= recovery);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
}

/// SMSC slow (every submit_sm_resp 1.5 s late: the window fills and stays full, nothing
/// times out or is lost), then throttling (ESME_RTHROTTLED: back off, retry, nothing
/// lost, nothing twice).
#[test]
fn smsc_slow_then_throttling_fill_the_window_and_back_off_without_loss_or_duplicates() {
    let slow_for = secs("FAULTS_SLOW_SECS", 4);
    let smsc = Smsc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = smsc_server(dir.path(), &smsc, &[("IMIS_GATEWAY_SMPP__WINDOW", "4")]);
    let u = Ussd::new(&server);
    smsc.wait("bound", Duration::from_secs(30), |s| s.bound() >= 1);

    // Slow.
    smsc.config(json!({"resp_delay_ms": 1500}));
    let slow = Instant::now();
    let markers = send_commands(&u, "slow", 0..12);
    while slow.elapsed() < slow_for {
        check_cover(&u, &format!("slow-{}", slow.elapsed().as_millis()));
    }
    let duration = slow.elapsed();
    smsc.config(json!({"resp_delay_ms": 0}));
    let recovery = wait_for(
        "every SMS after the slow phase",
        Duration::from_secs(60),
        || tally(&smsc.submits(), &markers).0 == markers.len(),
    );
    let stats = smsc.stats();
    let (_, dups) = report_sms("smsc-slow", duration, recovery, &smsc.submits(), &markers);
    assert_eq!(dups, 0, "SMS submitted twice: {stats}");
    assert_eq!(
        stats["max_outstanding"], 4,
        "the window filled and was never exceeded: {stats}"
    );

    // Throttling.
    smsc.config(json!({"throttle_next": 10}));
    let throttled = Instant::now();
    let markers = send_commands(&u, "throttle", 100..110);
    check_cover(&u, "throttle");
    let duration = wait_for("the throttled submits", Duration::from_secs(30), || {
        smsc.stats()["throttled"] == 10
    });
    // Recovery: from the last refusal to the last owed SMS accepted.
    let recovery = wait_for(
        "every SMS after throttling",
        Duration::from_secs(60),
        || tally(&smsc.submits(), &markers).0 == markers.len(),
    );
    assert!(throttled.elapsed() >= duration + recovery);
    std::thread::sleep(Duration::from_millis(500));
    let (delivered, dups) = report_sms(
        "smsc-throttling",
        duration,
        recovery,
        &smsc.submits(),
        &markers,
    );
    assert_eq!(delivered, markers.len());
    assert_eq!(dups, 0, "SMS submitted twice: {}", smsc.stats());
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
}

/// The central PostgreSQL stops (pg_ctl, immediate) while officers enrol families by SMS
/// and a member renews and pays; USSD keeps answering from the store; after PostgreSQL is
/// back the mirror catches up and every row is there once.
#[test]
fn postgres_down_while_officers_enrol_and_members_pay_catches_up_with_each_row_once() {
    use common::mirror::{mirror_health, mirrored_server, wait_mirrored_within};
    let down_for = secs("FAULTS_PG_DOWN_SECS", 20);
    let pg = common::pg::Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let env = base_env();
    let mut extra = refs(&env);
    extra.extend([
        ("IMIS_GATEWAY_MIRROR__BACKOFF_BASE_MS", "100"),
        ("IMIS_GATEWAY_MIRROR__BACKOFF_CAP_SECS", "2"),
    ]);
    let server = mirrored_server(&pg, dir.path(), &extra);
    let u = Ussd::new(&server);
    // One enrolment before the fault, mirrored.
    let enrol = |i: usize| {
        let phone = format!("07541119{i:02}");
        let (status, body) = sms_inbound(
            &u,
            &format!("pg-reg-{i}"),
            OFFICER,
            &format!(
                "SAJILI {PIN} MPYA Mushi {} Juma 12/03/1990 KE V0111 {phone}",
                ["Neema", "Rehema", "Zawadi", "Upendo", "Amani", "Baraka"][i % 6]
            ),
        );
        assert_eq!(status, 200, "{body}");
        format!("2557541119{i:02}")
    };
    let mut phones = vec![enrol(0)];
    wait_for(
        "the first enrolment in PostgreSQL",
        Duration::from_secs(60),
        || {
            pg.query(&format!(
                r#"SELECT count(*) FROM "tblInsuree" WHERE "Phone" = '{}'"#,
                phones[0]
            )) == "1"
        },
    );
    let applied_before = wait_mirrored_within(&u, 1, Duration::from_secs(60))["applied_total"]
        .as_u64()
        .unwrap_or(0);

    pg.stop();
    let down = Instant::now();
    // Enrolments, a renewal and its payment while the database is down.
    for i in 1..4 {
        phones.push(enrol(i));
    }
    let (mut d, _) = Dialog::dial(&u, Gw::Json, "pg-renew", "255754100002");
    walk(&mut d, &["2", "1", "100000014", "1"]);
    let (end, done) = d.send("1");
    assert!(end, "{done}");
    let cn = control_number(&done);
    let (status, body) = u.rt.block_on(async {
        let r = u
            .client
            .post(format!("{}/gepg-sim/pay", u.base))
            .json(&json!({"control_number": cn}))
            .send()
            .await
            .expect("POST /gepg-sim/pay");
        (r.status().as_u16(), r.text().await.expect("body"))
    });
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("7101"),
        "payment acknowledged while PG is down: {body}"
    );
    let mut hops = 0;
    while down.elapsed() < down_for {
        check_cover(&u, &format!("pg-down-{hops}"));
        hops += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let h = mirror_health(&u);
    assert!(
        h["lag_secs"].as_f64().unwrap_or(0.0) > 0.0,
        "a backlog waits: {h}"
    );
    let duration = down.elapsed();
    pg.start_server();
    let back = Instant::now();
    let h = wait_mirrored_within(&u, applied_before + 1, Duration::from_secs(120));
    let recovery = back.elapsed();
    let owed = h["applied_total"].as_u64().unwrap_or(0) - applied_before;

    // Each enrolment once, the payment's premium once, no row twice in any table.
    let mut delivered = 0;
    for p in &phones {
        let n = pg.query(&format!(
            r#"SELECT count(*) FROM "tblInsuree" WHERE "Phone" = '{p}' AND "ValidityTo" IS NULL"#
        ));
        assert_eq!(n, "1", "enrolment of {p}");
        delivered += 1;
    }
    let premiums = pg.query(
        r#"SELECT count(*) FROM "tblPremium" pr JOIN "tblPolicy" p ON p."PolicyID" = pr."PolicyID"
           JOIN "tblInsuree" i ON i."FamilyID" = p."FamilyID"
           WHERE i."CHFID" = '100000014' AND i."IsHead" AND pr."ValidityTo" IS NULL
             AND p."PolicyStage" = 'R'"#,
    );
    assert_eq!(premiums, "1", "the payment's premium");
    delivered += 1;
    let mut dups = 0;
    for (table, uuid) in [
        ("tblFamilies", "FamilyUUID"),
        ("tblInsuree", "InsureeUUID"),
        ("tblPolicy", "PolicyUUID"),
        ("tblPremium", "PremiumUUID"),
        ("tblPayment", "PaymentUUID"),
    ] {
        let n: usize = pg
            .query(&format!(
                r#"SELECT count(*) - count(DISTINCT "{uuid}") FROM "{table}""#
            ))
            .parse()
            .unwrap();
        dups += n;
    }
    report(
        &format!("postgres-down(owed mirror writes {owed})"),
        duration,
        recovery,
        phones.len() + 1,
        delivered,
        dups,
    );
    assert_eq!(dups, 0, "rows written twice");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
}

/// A tmpfs of `mb` MiB mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// The tmpfs, or none where mounting is not allowed: the test is skipped, saying so.
    fn mount_or_skip(mb: u32, fault: &str) -> Option<Tmpfs> {
        Tmpfs::mount(mb)
            .map_err(|why| {
                println!("FAULT {fault} SKIPPED: {why} (needs root and mount -t tmpfs)");
            })
            .ok()
    }

    fn mount(mb: u32) -> Result<Tmpfs, String> {
        let dir = tempfile::Builder::new()
            .prefix("imis-faults-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a ballast file until the filesystem refuses (ENOSPC); returns its size.
    fn fill(&self) -> (PathBuf, u64) {
        use std::io::Write;
        let path = self.path().join("ballast");
        let mut f = std::fs::File::create(&path).expect("create ballast");
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => size += n as u64,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "ballast: {e}");
                    break;
                }
            }
        }
        let _ = f.flush();
        (path, size)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Disk full on the data directory: the server refuses new work clearly (USSD END
/// "temporarily unavailable" in the member's language, 503 on `/sms/inbound` and to GePG
/// with a non-success ack, ESME_RX_T_APPN to the SMSC, `/health` degraded with the disk
/// state, an error log line "disk full" with the path), does not crash, and recovers
/// without a restart once the ballast is deleted: the refused work, re-sent, succeeds once.
#[test]
fn disk_full_refuses_new_work_clearly_and_recovers_without_restart_when_space_returns() {
    use gepg_support::{ack_of, notification_xml, payment_trx, seed_waiting, Poster, TestKeys};
    let Some(fs) = Tmpfs::mount_or_skip(40, "disk-full") else {
        return;
    };
    let data = fs.path().join("data");
    let keys = TestKeys::new();
    let w = seed_waiting(&data, 1).remove(0);
    let smsc = Smsc::start(&[]);
    let mut env = base_env();
    env.extend(keys.env());
    env.extend(smsc.gateway_env());
    env.extend(
        [
            ("IMIS_GATEWAY_GEPG__POOL_LOW_WATER", "0"),
            ("IMIS_GATEWAY_GEPG__RECONCILE_AT", ""),
            ("IMIS_GATEWAY_STORE__MIN_FREE_MB", "8"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let server = Server::start(&data, &[], &refs(&env));
    let u = Ussd::new(&server);
    let http = Poster::new(server.url(""));
    smsc.wait("bound", Duration::from_secs(30), |s| s.bound() >= 1);
    // The payer picks English before the fault (menu 4 Language → 2 English).
    let (mut d, _) = Dialog::dial(&u, Gw::At, "lang", &w.phone);
    walk(&mut d, &["4", "2"]);
    std::thread::sleep(Duration::from_millis(1200)); // sled's background flush is idle

    let (ballast, size) = fs.fill();
    let full = Instant::now();
    // USSD: END "temporarily unavailable", in each member's language.
    let (end, en) = u.at("full-en", &w.phone, "*152*00#", "");
    assert!(end && en.contains("temporarily unavailable"), "{en}");
    let (end, sw) = u.at("full-sw", MEMBER, "*152*00#", "");
    assert!(end && sw.contains("haipatikani kwa muda"), "{sw}");
    // HTTP MO: 503 naming the disk.
    let (status, body) = sms_inbound(&u, "full-1", OFFICER, "HALI 070707070");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk full"), "{body}");
    // GePG: 503 and a non-success ack code, so GePG re-sends.
    let notice = keys.signed(&notification_xml(&payment_trx(
        "DISKFULL-1",
        &w.control_number,
        &w.payment.to_string(),
        30_000,
    )));
    let (status, raw) = http.post("/gepg/payment", notice.clone());
    let (_, code) = ack_of(&keys, &raw);
    assert_eq!(status, 503);
    assert_ne!(code, "7101", "GePG must re-send");
    // SMPP MO: a temporary error, so the SMSC redelivers.
    let mo = json!({"from": "255754999001", "to": "15200", "text": "HALI 070707070"});
    assert_eq!(smsc.mo(mo.clone()), 1);
    smsc.wait("the MO's response", Duration::from_secs(10), |s| {
        s.stats()["mo_resp"] == 1
    });
    assert_eq!(
        smsc.stats()["mo_resp_status"],
        json!([0x64]),
        "ESME_RX_T_APPN"
    );
    // /health: degraded, with the disk's state.
    assert_disk_health(&u, "full", false);
    let logs = server.logs();
    let path = data.display().to_string();
    assert!(
        logs.iter()
            .any(|l| l.contains("ERROR") && l.contains("disk full") && l.contains(&path)),
        "no error log naming the disk and {path}"
    );
    // Traffic keeps coming while the disk stays full: refused every time, no crash.
    let mut refused = 0;
    while full.elapsed() < secs("FAULTS_DISK_FULL_SECS", 2) {
        let (status, _) = sms_inbound(&u, &format!("refused-{refused}"), OFFICER, "HALI 100000014");
        assert_eq!(status, 503);
        let (end, _) = u.at(&format!("full-{refused}"), MEMBER, "*152*00#", "");
        assert!(end);
        refused += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let duration = full.elapsed();

    // Space returns: no restart; the peers re-send and succeed, once.
    std::fs::remove_file(&ballast).unwrap();
    let back = Instant::now();
    wait_for("health ok", Duration::from_secs(10), || {
        get(&u, "/health").0 == 200
    });
    let (end, screen) = u.at("back-en", &w.phone, "*152*00#", "");
    assert!(!end, "{screen}");
    let (status, body) = sms_inbound(&u, "full-1", OFFICER, "HALI 070707070");
    assert_eq!(status, 200, "{body}");
    let (status, raw) = http.post("/gepg/payment", notice.clone());
    assert_eq!((status, ack_of(&keys, &raw).1), (200, "7101".to_string()));
    assert_eq!(smsc.mo(mo), 1);
    smsc.wait(
        "the redelivered MO's response",
        Duration::from_secs(10),
        |s| s.stats()["mo_resp"] == 2,
    );
    let recovery = back.elapsed();
    assert_eq!(smsc.stats()["mo_resp_status"], json!([0x64, 0]));
    // GePG re-sends once more (its ack got lost): a duplicate, acknowledged, no effect.
    let (status, raw) = http.post("/gepg/payment", notice);
    assert_eq!((status, ack_of(&keys, &raw).1), (200, "7101".to_string()));
    let metrics = http.get("/payments/metrics");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = imis_gateway::store::Store::open(&data, Default::default()).unwrap();
    let premiums = store.premiums_of_policy(w.policy).unwrap().len();
    let mos = imis_gateway::sms::inbound::all(&store).unwrap();
    let http_mos = mos
        .iter()
        .filter(|m| m.from == OFFICER && m.text == "HALI 070707070")
        .count();
    let smpp_mos = mos.iter().filter(|m| m.from == "255754999001").count();
    let dups = premiums.saturating_sub(1) + http_mos.saturating_sub(1) + smpp_mos.saturating_sub(1);
    report(
        &format!("disk-full(ballast {} MiB)", size / (1024 * 1024)),
        duration,
        recovery,
        3,
        usize::from(premiums >= 1) + usize::from(http_mos >= 1) + usize::from(smpp_mos >= 1),
        dups,
    );
    assert_eq!(premiums, 1, "{metrics}");
    assert_eq!((http_mos, smpp_mos), (1, 1), "{mos:?}");
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The wall clock jumps while the server runs (libfaketime, offset read from a file on
/// every call; the monotonic clock is left alone, as an NTP step leaves it): +1 day,
/// +2 hours, then back 1 hour. Scheduler jobs run once per date, no SMS twice, USSD keeps
/// answering, the outbox neither stalls nor bursts, nothing is lost.
#[test]
fn clock_jumps_forward_and_back_send_nothing_twice_and_lose_nothing() {
    if !Path::new(LIBFAKETIME).exists() {
        println!("FAULT clock-jump SKIPPED: {LIBFAKETIME} missing (apt-get install faketime; scripts/test-deps)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let offset_file = tmp.path().join("faketime");
    let set_offset = |secs: i64| std::fs::write(&offset_file, format!("{secs:+}\n")).unwrap();
    set_offset(0);
    let smsc = Smsc::start(&[]);
    let dir = tmp.path().join("data");
    let mut env = base_env();
    env.extend(smsc.gateway_env());
    env.extend(
        [
            ("LD_PRELOAD", LIBFAKETIME.to_string()),
            ("FAKETIME_TIMESTAMP_FILE", offset_file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("IMIS_GATEWAY_SCHEDULER__TICK_SECS", "1".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let server = Server::start(&dir, &["--demo"], &refs(&env));
    let u = Ussd::new(&server);
    smsc.wait("bound", Duration::from_secs(30), |s| s.bound() >= 1);
    // Is the server's wall clock ours to move? Its log timestamps tell.
    set_offset(3 * 365 * 86_400);
    std::thread::sleep(Duration::from_millis(300));
    check_cover(&u, "probe");
    let year_now = chrono::Utc::now().format("%Y").to_string();
    let mut all_logs = server.logs();
    let moved = all_logs
        .iter()
        .any(|l| !l.starts_with(&year_now) && l.starts_with("20"));
    set_offset(0);
    if !moved {
        println!("FAULT clock-jump SKIPPED: libfaketime did not move the server's clock (static binary or preload refused)");
        return;
    }
    let start = Instant::now();
    let mut markers = Vec::new();
    let mut n = 0;
    let mut across = Vec::new();
    let mut worst = Duration::ZERO;
    let mut round = |label: &str, offset: i64, markers: &mut Vec<String>| {
        // A session begun before the jump and continued after it, and a new one.
        let (mut d, _) = Dialog::dial(&u, Gw::At, &format!("{label}-across"), MEMBER);
        set_offset(offset);
        let mine = send_commands(&u, label, n..n + 4);
        n += 4;
        let (end, screen) = d.send("1");
        assert!(!screen.contains("Samahani"), "{label}: {screen}");
        across.push(format!(
            "{label}:{}",
            if end { "ended" } else { "continued" }
        ));
        check_cover(&u, &format!("{label}-new"));
        // The outbox does not stall: this jump's replies go out at once.
        let t = wait_for(
            &format!("the replies after {label}"),
            Duration::from_secs(20),
            || tally(&smsc.submits(), &mine).0 == mine.len(),
        );
        worst = worst.max(t);
        markers.extend(mine);
        std::thread::sleep(Duration::from_millis(1200)); // scheduler ticks at the new time
    };
    round("plus-1d", 86_400, &mut markers);
    round("plus-1d2h", 86_400 + 7_200, &mut markers);
    round("minus-1h", 86_400 + 3_600, &mut markers);
    round("back-to-now", 0, &mut markers);
    let duration = start.elapsed();
    let recovery = wait_for(
        "every reply after the jumps",
        Duration::from_secs(60),
        || tally(&smsc.submits(), &markers).0 == markers.len(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let submits = smsc.submits();
    let (delivered, mut dups) = tally(&submits, &markers);
    // Scheduled SMS (reminders, prompts) too: no text to one phone twice.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for s in &submits {
        *seen
            .entry(format!("{}|{}|{}", s["to"], s["udh"], s["text"]))
            .or_default() += 1;
    }
    let all_dups: usize = seen.values().map(|n| n - 1).sum();
    dups = dups.max(all_dups);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    all_logs.extend(logs);
    let logs = all_logs;
    // Each job ran at most once per window (date).
    let mut runs: HashMap<String, usize> = HashMap::new();
    for l in logs.iter().filter(|l| l.contains("job run")) {
        let job = l
            .split("job=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next());
        let window = l
            .split("window=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next());
        if let (Some(j), Some(w)) = (job, window) {
            *runs.entry(format!("{j} {w}")).or_default() += 1;
        }
    }
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();

    report(
        &format!(
            "clock-jump(+1d,+2h,-1h,back; job windows run {}; sessions across: {})",
            runs.len(),
            across.join(",")
        ),
        duration,
        worst.max(recovery),
        markers.len(),
        delivered,
        dups,
    );
    assert!(twice.is_empty(), "jobs run twice for one date: {twice:?}");
    assert_eq!(delivered, markers.len());
    assert_eq!(dups, 0, "SMS submitted twice");
    let out = common::run(&["jobs", "list", "--data-dir", dir.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What sled 0.34 does when it meets the full disk itself (the guard off: `min_free_mb = 0`,
/// as when another process takes the last bytes between the guard's look and sled's
/// flush): its first failed flush is kept as the database's error for good, so every
/// later write fails, even after space returns. The server refuses cleanly (503, `/health`
/// "failed" with `restart_required`), never acknowledges what is not on disk, and after a
/// restart everything acknowledged is there and the refused work, re-sent, is stored once.
#[test]
fn disk_full_met_by_sled_itself_refuses_until_restart_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount_or_skip(24, "disk-full-unguarded") else {
        return;
    };
    let data = fs.path().join("data");
    let mut env = base_env();
    env.push(("IMIS_GATEWAY_STORE__MIN_FREE_MB".into(), "0".into()));
    let server = Server::start(&data, &["--demo"], &refs(&env));
    let u = Ussd::new(&server);
    std::thread::sleep(Duration::from_millis(1200));
    let (ballast, _) = fs.fill();
    let full = Instant::now();
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let id = format!("unguarded-{i}");
        let (status, body) = sms_inbound(&u, &id, OFFICER, &format!("HALI {}", unknown_chfid(i)));
        match status {
            200 => acked.push(id),
            503 => {
                assert!(body.contains("disk full"), "{body}");
                refused.push(id);
            }
            other => panic!("{other}: {body}"),
        }
        if refused.len() >= 3 {
            break;
        }
    }
    assert!(!refused.is_empty(), "the full disk never reached sled");
    assert_disk_health(&u, "failed", true);
    // Space returns, but sled keeps its error: still refused, clearly.
    std::fs::remove_file(&ballast).unwrap();
    let duration = full.elapsed();
    let (status, body) = sms_inbound(&u, &refused[0], OFFICER, "HALI 070707070");
    assert_eq!(status, 503, "sled recovered by itself after all? {body}");
    let (end, screen) = u.at("unguarded", MEMBER, "*152*00#", "");
    assert!(end && screen.contains("haipatikani kwa muda"), "{screen}");
    // The restart: the server comes back on the same data.
    let restart = Instant::now();
    // The shutdown flush fails on the poisoned store: its exit status is not the point.
    let (_, logs) = server.terminate();
    assert!(
        logs.iter()
            .any(|l| l.contains("ERROR") && l.contains("disk full") && l.contains("restarted")),
        "no error log telling the operator to restart"
    );
    let server = Server::start(&data, &[], &refs(&base_env()));
    let u = Ussd::new(&server);
    for id in &refused {
        let (status, body) = sms_inbound(&u, id, OFFICER, &format!("HALI re-{id}"));
        assert_eq!(status, 200, "{body}");
    }
    let recovery = restart.elapsed();
    check_cover(&u, "after-restart");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = imis_gateway::store::Store::open(&data, Default::default()).unwrap();
    let mos = imis_gateway::sms::inbound::all(&store).unwrap();
    let from_officer: Vec<_> = mos.iter().filter(|m| m.from == OFFICER).collect();
    let lost = acked
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            !from_officer
                .iter()
                .any(|m| m.text == format!("HALI {}", unknown_chfid(*i)))
        })
        .count();
    let owed = acked.len() + refused.len();
    let dups = from_officer.len().saturating_sub(owed);
    report(
        &format!(
            "disk-full-unguarded(acked {} before sled failed; restart required)",
            acked.len()
        ),
        duration,
        recovery,
        owed,
        from_officer.len().min(owed),
        dups,
    );
    assert_eq!(lost, 0, "an acknowledged MO was lost: {from_officer:?}");
    assert_eq!(from_officer.len(), owed, "{from_officer:?}");
}
