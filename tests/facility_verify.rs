//! Health facility staff verify a patient's cover (issue 21), against the real server over
//! both USSD adapters (Africa's Talking and /ussd/json) and SMS (`POST /sms/inbound`):
//! covered, expired, Idle (unpaid), suspended, a family member not on the policy, a wrong
//! CHFID, an unregistered phone; every verification recorded and counted in /metrics.
//!
//! The world: the demo store (`demo-data`, README's families), then, on the stopped
//! store, one generated family's Active policy set Suspended and a member added to the
//! covered family 070707070 without a row under its policy; then a facility and its staff
//! phone registered with `imis-gateway facility add` / `add-staff`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::ussd::{metric, queued_sms, Dialog, Gw, Ussd};
use common::{Server, BIN};
use imis_gateway::domain::{Chfid, Gender, Insuree, PolicyStatus, Relationship};
use imis_gateway::store::{Store, StoreOptions, TxResult};
use serde_json::json;

const HF: &str = "DSP001";
const PIN: &str = "4321";
/// The facility's staff phones: one per adapter, one for SMS.
const STAFF_AT: &str = "255754300001";
const STAFF_JSON: &str = "255754300002";
const STAFF_SMS: &str = "255754300003";
/// Phones registered nowhere, linked to no family (one per adapter).
const STRANGER: &str = "255700000009";
const STRANGER_JSON: &str = "255700000008";
/// Demo families (src/demo): Active; expired a month ago; expired and renewed unpaid.
const COVERED: &str = "070707070";
const EXPIRED: &str = "100000014";
const IDLE: &str = "100000025";
/// 100000014 with its check digit wrong.
const BAD_DIGIT: &str = "100000015";

/// The CHFIDs the test world adds: a suspended family's head, and a member of the covered
/// family who has no row under its policy.
struct World {
    suspended: String,
    not_on_policy: String,
}

/// Runs the binary with `stdin` as its standard input; it must succeed.
fn run_with_stdin(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Suspends one generated family's current Active policy and adds a member without a row
/// to family 070707070, on the stopped store.
fn edit_store(dir: &Path) -> World {
    let store = Store::open(dir, StoreOptions::default()).expect("open store");
    let today = imis_gateway::domain::eat_date(chrono::Utc::now());
    let mut active = Vec::new();
    store
        .for_each_policy(|p| {
            if p.status == PolicyStatus::Active
                && p.expiry_date > today + chrono::Duration::days(60)
            {
                active.push(p);
            }
            Ok(true)
        })
        .expect("policies");
    // A generated family (CHFIDs from 200000000 up), not one of the README's.
    let generated = |p: &imis_gateway::domain::Policy| {
        let f = store.family(p.family).unwrap().expect("family");
        let head = store.insuree(f.head).unwrap().expect("head");
        head.chfid.as_str().starts_with('2')
    };
    let target = active.into_iter().find(generated);
    let mut policy = target.expect("an Active generated policy");
    policy.status = PolicyStatus::Suspended;
    let family = store.family(policy.family).unwrap().expect("family");
    let head = store.insuree(family.head).unwrap().expect("head");
    let covered = store
        .insuree_by_chfid(Chfid::from_central(COVERED).unwrap())
        .unwrap()
        .expect("covered head");
    let newcomer = Insuree {
        id: store.next_id().unwrap(),
        uuid: uuid::Uuid::new_v4(),
        chfid: Chfid::from_base(31_000_001).unwrap(),
        family: covered.family,
        is_head: false,
        last_name: "Hamisi".into(),
        other_names: "Zawadi".into(),
        dob: NaiveDate::from_ymd_opt(2001, 5, 4).unwrap(),
        gender: Gender::Female,
        relationship: Some(Relationship::Sibling),
        phone: None,
        card_issued: false,
    };
    store
        .write(|tx| -> TxResult<()> {
            tx.put_policy(&policy)?;
            tx.put_insuree(&newcomer)?;
            Ok(())
        })
        .expect("write");
    store.flush().unwrap();
    World {
        suspended: head.chfid.to_string(),
        not_on_policy: newcomer.chfid.to_string(),
    }
}

/// Registers `phone` as a staff phone of [`HF`] with `pin` (typed on stdin, as an
/// administrator does), on the stopped store `d`.
fn add_staff(d: &str, phone: &str, pin: &str) {
    let out = run_with_stdin(
        &[
            "facility",
            "add-staff",
            "--hf",
            HF,
            "--phone",
            phone,
            "--data-dir",
            d,
        ],
        &format!("{pin}\n"),
    );
    assert!(out.contains("registered") && !out.contains(pin), "{out}");
}

/// The demo store edited as the module doc says, its facility and staff phones registered,
/// and the server running on it.
fn world() -> (tempfile::TempDir, World, Server, Ussd) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run_with_stdin(&["demo-data", "--data-dir", d], "");
    let w = edit_store(dir.path());
    let out = run_with_stdin(
        &[
            "facility",
            "add",
            "--hf",
            HF,
            "--name",
            "Mwananyamala",
            "--data-dir",
            d,
        ],
        "",
    );
    assert!(out.contains("DSP001: facility saved"), "{out}");
    for phone in [STAFF_AT, STAFF_JSON, STAFF_SMS] {
        add_staff(d, phone, PIN);
    }
    let server = Server::start(dir.path(), &[], &[]);
    let u = Ussd::new(&server);
    (dir, w, server, u)
}

/// A staff phone's verification of `chfid` over `gw`: the result screen (first page). The
/// session is then dropped by the network, as a phone hanging up.
fn verify_ussd(u: &Ussd, gw: Gw, id: &str, phone: &str, chfid: &str) -> String {
    let first = format!("1*{chfid}");
    let (mut d, (end, screen)) = Dialog::dial_with(u, gw, id, phone, "*152*00#", &first);
    assert!(!end, "{gw:?} {chfid}: {screen}");
    d.drop_by_network();
    screen
}

fn staff_of(gw: Gw) -> &'static str {
    match gw {
        Gw::At => STAFF_AT,
        Gw::Json => STAFF_JSON,
    }
}

#[test]
fn staff_verify_each_case_over_both_ussd_adapters() {
    let (_dir, w, server, u) = world();
    for gw in Gw::BOTH {
        let staff = staff_of(gw);
        // A staff phone's first menu is the facility's.
        let (mut d, first) = Dialog::dial(&u, gw, "home", staff);
        assert!(
            first == "CHF kituo cha afya\n1 Hakiki mgonjwa\n2 Huduma za mwanachama",
            "{first}"
        );
        d.drop_by_network();

        let s = verify_ussd(&u, gw, "covered", staff, COVERED);
        assert!(s.starts_with("Juma Hamisi M 1973, "), "{gw:?}: {s}");
        assert!(s.contains("ANA BIMA leo, hadi "), "{gw:?}: {s}");
        // The members covered: the head among them, the newcomer not.
        assert!(s.contains("Wenye bima:\nJuma H.\n"), "{gw:?}: {s}");
        assert!(!s.contains("Zawadi"), "{gw:?}: {s}");

        let s = verify_ussd(&u, gw, "expired", staff, EXPIRED);
        assert!(s.contains("HANA BIMA leo: imeisha "), "{gw:?}: {s}");
        assert!(s.contains("Wenye bima:\n-"), "{gw:?}: {s}");

        let s = verify_ussd(&u, gw, "idle", staff, IDLE);
        assert!(s.contains("HANA BIMA leo: haijalipwa"), "{gw:?}: {s}");

        let s = verify_ussd(&u, gw, "suspended", staff, &w.suspended);
        assert!(s.contains("HANA BIMA leo: imesitishwa"), "{gw:?}: {s}");

        let s = verify_ussd(&u, gw, "not-on-policy", staff, &w.not_on_policy);
        assert!(s.starts_with("Zawadi Hamisi F 2001"), "{gw:?}: {s}");
        assert!(
            s.contains("HANA BIMA leo: hayumo kwenye bima ya familia"),
            "{gw:?}: {s}"
        );
        // Her family's covered members are still told (she is not among them).
        assert!(s.contains("Wenye bima:\nJuma H.\n"), "{gw:?}: {s}");

        // A wrong check digit re-prompts, with the reason; then the right number answers.
        let (mut d, (_, s)) = Dialog::dial_with(
            &u,
            gw,
            "bad-digit",
            staff,
            "*152*00#",
            &format!("1*{BAD_DIGIT}"),
        );
        assert!(s.starts_with("Namba ya CHF ina tarakimu 9"), "{gw:?}: {s}");
        assert!(s.contains("Weka namba ya CHF ya mgonjwa"), "{gw:?}: {s}");
        let (_, s) = d.send(EXPIRED);
        assert!(s.contains("HANA BIMA leo: imeisha "), "{gw:?}: {s}");
        d.drop_by_network();
        // A well-formed number no member has: told so, asked again.
        let unknown = Chfid::from_base(55_555_555).unwrap().to_string();
        let s = verify_ussd(&u, gw, "unknown", staff, &unknown);
        assert!(
            s.starts_with(&format!("Namba {unknown} haijasajiliwa.")),
            "{gw:?}: {s}"
        );
    }
    // Every verification that reached a patient lookup is counted for the facility: per
    // adapter covered, expired, idle, suspended, not on policy, expired again, unknown.
    let m = u.metrics();
    assert_eq!(
        metric(&m, &format!("facility_verifications_today{{hf=\"{HF}\"}}")),
        14,
        "{m}"
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    // No staff phone in full and no PIN in the logs.
    let all = logs.join("\n");
    assert!(
        !all.contains(STAFF_AT) && !all.contains(STAFF_JSON),
        "{all}"
    );
}

#[test]
fn an_unregistered_phone_gets_the_member_journey_and_no_other_familys_data() {
    let (dir, _w, server, u) = world();
    for gw in Gw::BOTH {
        let stranger = if gw == Gw::At {
            STRANGER
        } else {
            STRANGER_JSON
        };
        let (mut d, first) = Dialog::dial(&u, gw, "stranger", stranger);
        assert!(
            first.starts_with("Karibu CHF iliyoboreshwa"),
            "{gw:?}: {first}"
        );
        assert!(!first.contains("kituo"), "{first}");
        d.drop_by_network();
        // The member's "check coverage" under [privacy]: no name, no family member.
        let (mut d, (_, s)) =
            Dialog::dial_with(&u, gw, "stranger-2", stranger, "*152*00#", "1*1*070707070");
        assert!(
            s.starts_with("Bima ya familia ya 070707070:"),
            "{gw:?}: {s}"
        );
        assert!(!s.contains("Hamisi") && !s.contains("Juma"), "{gw:?}: {s}");
        d.drop_by_network();
        // The facility's own screen numbers typed from the member home lead elsewhere.
        let (mut d, (_, s)) =
            Dialog::dial_with(&u, gw, "stranger-3", stranger, "*152*00#", "1*070707070");
        assert!(
            !s.contains("Hamisi") && !s.contains("ANA BIMA"),
            "{gw:?}: {s}"
        );
        d.drop_by_network();
    }
    let m = u.metrics();
    assert_eq!(
        metric(&m, &format!("facility_verifications_today{{hf=\"{HF}\"}}")),
        0,
        "{m}"
    );
    // An SMS verification from the stranger is not taken: HELP answers it.
    assert_eq!(
        sms_inbound(
            &u,
            "mo-stranger",
            STRANGER,
            &format!("HAKIKI {PIN} {COVERED}")
        ),
        200
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let queued = queued_sms(dir.path());
    assert!(queued.iter().all(|t| !t.contains("Hamisi")), "{queued:?}");
    assert!(queued.iter().any(|t| t.contains("*152*00#")), "{queued:?}");
}

/// The ONE place this file posts an MO to `POST /sms/inbound`: the route's auth, when it
/// comes, is added here. Returns the HTTP status.
fn sms_inbound(u: &Ussd, id: &str, from: &str, text: &str) -> u16 {
    let (name, value) = common::sms::inbound_headers();
    u.rt.block_on(async {
        u.client
            .post(format!("{}/sms/inbound", u.base))
            .header(name, value)
            .json(&json!({"from": from, "to": "15200", "id": id, "text": text}))
            .send()
            .await
            .expect("POST /sms/inbound")
            .status()
            .as_u16()
    })
}

/// Waits until the facility's count reaches `n` (the SMS worker answers asynchronously).
fn wait_count(u: &Ussd, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let m = u.metrics();
        let got = metric(&m, &format!("facility_verifications_today{{hf=\"{HF}\"}}"));
        if got >= n {
            return;
        }
        assert!(Instant::now() < deadline, "count {got} < {n}: {m}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn staff_verify_by_sms_with_a_pin() {
    let (dir, w, server, u) = world();
    let cases = [
        ("HAKIKI", COVERED.to_string()),
        ("VERIFY", EXPIRED.to_string()),
        ("hakiki", IDLE.to_string()),
        ("HAKIKI", w.suspended.clone()),
        ("VERIFY", w.not_on_policy.clone()),
        ("HAKIKI", BAD_DIGIT.to_string()),
    ];
    for (i, (kw, chfid)) in cases.iter().enumerate() {
        let text = format!("{kw} {PIN} {chfid}");
        assert_eq!(sms_inbound(&u, &format!("mo-{i}"), STAFF_SMS, &text), 200);
    }
    // A wrong PIN is refused and not recorded; the usage is told without a CHFID.
    assert_eq!(
        sms_inbound(&u, "mo-pin", STAFF_SMS, &format!("HAKIKI 9999 {COVERED}")),
        200
    );
    assert_eq!(sms_inbound(&u, "mo-usage", STAFF_SMS, "VERIFY"), 200);
    wait_count(&u, cases.len() as u64);
    // Let the refusals (queued behind the verifications) be answered too.
    std::thread::sleep(Duration::from_secs(4));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(!logs.join("\n").contains(PIN), "a PIN in the logs");
    let q = queued_sms(dir.path());
    let find = |needle: &str| {
        q.iter()
            .find(|t| t.contains(needle))
            .unwrap_or_else(|| panic!("no SMS with {needle:?} in {q:#?}"))
            .clone()
    };
    let t = find(&format!("CHF {COVERED}: Juma Hamisi, M, mwaka"));
    assert!(
        t.contains("Ana bima leo: NDIYO.") && t.contains("Wenye bima: Juma, "),
        "{t}"
    );
    let t = find(&format!("CHF {EXPIRED}: Neema Mushi, F, born"));
    assert!(t.contains("Covered today: NO, cover expired."), "{t}");
    let t = find(&format!("CHF {IDLE}: Baraka Kimaro"));
    assert!(t.contains("Ana bima leo: HAPANA, haijalipwa."), "{t}");
    let t = find(&format!("CHF {}:", w.suspended));
    assert!(t.contains("HAPANA, imesitishwa."), "{t}");
    let t = find(&format!(
        "CHF {}: Zawadi Hamisi, F, born 2001",
        w.not_on_policy
    ));
    assert!(t.contains("NO, not on the family's policy."), "{t}");
    find(&format!("CHF: {BAD_DIGIT} si namba sahihi ya CHF"));
    find("CHF: PIN si sahihi; umebakiza majaribio 4.");
    find("CHF: send VERIFY <PIN> <CHFID>");
    for t in &q {
        let parts = if t.is_ascii() {
            t.len().div_ceil(153)
        } else {
            3
        };
        assert!(t.len() <= 160 || parts <= 2, "over two segments: {t}");
    }
    // Recorded: facility, masked staff phone, CHFID, outcome; the MO no longer holds the PIN.
    let out = common::run(
        &[
            "facility",
            "log",
            "--hf",
            HF,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains(&format!("Sms\t255******003\t{COVERED}\tcovered")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}\tsuspended", w.suspended)),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}\tnot_on_policy", w.not_on_policy)),
        "{log}"
    );
    assert!(log.contains(&format!("{IDLE}\tunpaid")), "{log}");
    assert!(
        log.contains(&format!("{BAD_DIGIT}\tunknown_chfid")),
        "{log}"
    );
    assert!(!log.contains(STAFF_SMS), "{log}");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    for mo in imis_gateway::sms::inbound::all(&store).unwrap() {
        assert!(!mo.text.contains(PIN), "PIN at rest: {}", mo.text);
    }
}

/// Issue 14: "PINs never reach the disk: the PIN is checked and masked before the MO is
/// stored". A right and a wrong PIN by SMS, the server killed (SIGKILL) right after their
/// 200s: neither PIN is in any file of the data dir, before or after a restart; the
/// answers, the record and the failure count are there.
#[test]
fn a_staff_pin_by_sms_never_reaches_the_disk_even_across_a_crash() {
    const STAFF_CRASH: &str = "255754300004";
    const RIGHT: &str = "73914682";
    const WRONG: &str = "58203917";
    let (dir, _w, server, _u) = world();
    let d = dir.path().to_str().unwrap();
    let (status, _) = server.terminate();
    assert!(status.success());
    add_staff(d, STAFF_CRASH, RIGHT);
    let server = Server::start(dir.path(), &[], &[]);
    let u = Ussd::new(&server);
    let right = format!("HAKIKI {RIGHT} {COVERED}");
    assert_eq!(sms_inbound(&u, "crash-right", STAFF_CRASH, &right), 200);
    let wrong = format!("VERIFY {WRONG} {COVERED}");
    assert_eq!(sms_inbound(&u, "crash-wrong", STAFF_CRASH, &wrong), 200);
    server.kill9();
    for pin in [RIGHT, WRONG] {
        let at = common::files_holding(dir.path(), pin.as_bytes());
        assert!(at.is_empty(), "PIN {pin} on disk after a crash: {at:?}");
    }
    // The search sees the stored text (the store keeps it plain): the masked MO is there.
    assert!(
        !common::files_holding(dir.path(), format!("HAKIKI **** {COVERED}").as_bytes()).is_empty()
    );
    let server = Server::start(dir.path(), &[], &[]);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    for pin in [RIGHT, WRONG] {
        let at = common::files_holding(dir.path(), pin.as_bytes());
        assert!(at.is_empty(), "PIN {pin} on disk after a restart: {at:?}");
        assert!(!logs.join("\n").contains(pin), "PIN {pin} in the logs");
    }
    // Answered in the MO's transaction: the replies were durable with the 200s.
    let q = queued_sms(dir.path());
    assert!(
        q.iter()
            .any(|t| t.contains(&format!("CHF {COVERED}: Juma Hamisi"))),
        "{q:#?}"
    );
    assert!(
        q.iter()
            .any(|t| t.contains("CHF: wrong PIN; 4 tries left.")),
        "{q:#?}"
    );
    let out = common::run(&["facility", "log", "--hf", HF, "--data-dir", d], &[]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains(&format!("Sms\t255******004\t{COVERED}\tcovered")),
        "{log}"
    );
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let phone = imis_gateway::domain::Msisdn::parse(STAFF_CRASH).unwrap();
    let staff = imis_gateway::facility::registry::staff_of(&store, &phone)
        .unwrap()
        .unwrap();
    assert_eq!((staff.failures, staff.locked_until_ms), (1, None));
    let texts: Vec<String> = imis_gateway::sms::inbound::all(&store)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(
        texts.contains(&format!("HAKIKI **** {COVERED}")),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("VERIFY **** {COVERED}")),
        "{texts:?}"
    );
}

#[test]
fn facilities_are_imported_from_the_real_schemas_tbl_hf() {
    let cluster = common::openimis_db::OpenImisPg::start();
    let dsn = cluster.create("hf", common::openimis_db::Data::Demo);
    let current: usize = cluster
        .pg
        .query_in(
            "hf",
            r#"SELECT count(*) FROM "tblHF" WHERE "ValidityTo" IS NULL"#,
        )
        .parse()
        .unwrap();
    assert!(current > 0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run_with_stdin(&["facility", "import", "--from", &dsn, "--data-dir", d], "");
    assert!(
        out.contains(&format!("{current} facilities imported")),
        "{out}"
    );
    // An imported facility takes staff phones like one added by hand.
    let out = run_with_stdin(
        &[
            "facility",
            "add-staff",
            "--hf",
            "JMHOS001",
            "--phone",
            STAFF_AT,
            "--data-dir",
            d,
        ],
        &format!("{PIN}\n"),
    );
    assert!(
        out.contains("JMHOS001: staff phone 255******001 registered"),
        "{out}"
    );
    let out = run_with_stdin(&["facility", "list", "--data-dir", d], "");
    assert!(
        out.contains("JMHOS001\tJambero District Hospital\tlevel H\tcare B\tverified today 0\n\tstaff 255******001"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| !l.starts_with('\t')).count(),
        current,
        "{out}"
    );
}
