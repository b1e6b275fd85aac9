//! Issue 13's whole loop on the REAL openIMIS database, both variants (upstream's scripts
//! alone, and after the real backend's Django migrations): `import --from` the demo data,
//! then `serve` with the mirror and a 3-second pull: a USSD renewal of an imported family,
//! its GePG payment, an imported officer's REG + ADD + RENEW by SMS and the expiry job
//! (the demo's stale Active policies) reach the central tables with 0 dead letters, and
//! `mirror verify` finds nothing afterwards.

mod common;

use std::time::Duration;

use common::mirror::wait_mirrored_within;
use common::openimis_db::{Data, OpenImisPg, Variant};
use common::ussd::Ussd;
use common::Server;
use serde_json::json;

const OFFICER_PHONE: &str = "255754999001";

/// Policy history rows whose `LegacyID` names no row of the table.
const ORPHAN_HISTORY: &str = r#"SELECT count(*) FROM "tblPolicy" h WHERE h."ValidityTo" IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM "tblPolicy" c WHERE c."PolicyID" = h."LegacyID")"#;

/// README, "Pointing the gateway at a real openIMIS database", step 1.
const GRANTS: &[&str] = &[
    "CREATE ROLE imis_gateway LOGIN",
    r#"GRANT SELECT ON "tblLocations", "tblProduct", "tblOfficer", "tblOfficerVillages",
       "tblFamilies", "tblFamilySMS", "tblInsuree", "tblPolicy", "tblInsureePolicy",
       "tblPremium", "tblPayment", "tblPaymentDetails", "tblControlNumber" TO imis_gateway"#,
    r#"GRANT INSERT, UPDATE ON "tblOfficer", "tblOfficerVillages", "tblFamilies", "tblFamilySMS",
       "tblInsuree", "tblPolicy", "tblInsureePolicy", "tblPremium", "tblPayment",
       "tblPaymentDetails", "tblControlNumber" TO imis_gateway"#,
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO imis_gateway",
    "CREATE TABLE imis_gateway_mirror_progress (node text PRIMARY KEY, last_seq bigint NOT NULL, \
     updated timestamptz NOT NULL DEFAULT now())",
    "GRANT SELECT, INSERT, UPDATE ON imis_gateway_mirror_progress TO imis_gateway",
];

fn run_ok(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(common::BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run imis-gateway");
    if let Some(s) = stdin {
        let _ = child.stdin.take().expect("stdin").write_all(s.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn officer_sms(u: &Ussd, id: &str, text: &str) {
    let status = u.rt.block_on(async {
        u.client
            .post(format!("{}/sms/inbound", u.base))
            .header(
                common::sms::inbound_headers().0,
                common::sms::inbound_headers().1,
            )
            .json(&json!({"from": OFFICER_PHONE, "to": "15200", "id": id, "text": text}))
            .send()
            .await
            .expect("POST /sms/inbound")
            .status()
            .as_u16()
    });
    assert_eq!(status, 200, "{text}");
}

fn the_loop(variant: Variant) {
    let oi = OpenImisPg::start();
    let db = "central";
    let dsn = oi.create_variant(db, variant, Data::Demo);
    let q = |sql: &str| oi.pg.query_in(db, sql);
    // Officer E00001 (village 59) gets a phone in openIMIS, as the CHF office would record it.
    q(&format!(
        r#"UPDATE "tblOfficer" SET "Phone" = '{OFFICER_PHONE}' WHERE "Code" = 'E00001' AND "ValidityTo" IS NULL"#
    ));
    // The gateway logs in with exactly the rights the README lists (PostgreSQL 15 gives
    // PUBLIC no CREATE on schema public: the progress table is the administrator's).
    for sql in GRANTS {
        q(sql);
    }
    let dsn = dsn.replace("user=postgres", "user=imis_gateway");
    let village = q(r#"SELECT "LocationCode" FROM "tblLocations" WHERE "LocationId" = 59"#);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let data = data.to_str().unwrap();
    run_ok(&["import", "--from", &dsn, "--data-dir", data], None);
    run_ok(
        &["officer", "set-pin", "--code", "E00001", "--data-dir", data],
        Some("4321\n"),
    );
    let (code, text) = verify(data, &dsn);
    assert_eq!(code, Some(0), "right after import: {text}");

    let stale_active = q(
        r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NULL AND "PolicyStatus" = 2
           AND "ExpiryDate" < now()"#,
    );
    let orphans_before = q(ORPHAN_HISTORY);
    let server = Server::start(
        std::path::Path::new(data),
        &[],
        &[
            ("IMIS_GATEWAY_MIRROR__ENABLED", "true"),
            ("IMIS_GATEWAY_MIRROR__DSN", dsn.as_str()),
            ("IMIS_GATEWAY_MIRROR__LEASE_SECS", "1"),
            ("IMIS_GATEWAY_MIRROR__PULL_INTERVAL_SECS", "3"),
            ("IMIS_GATEWAY_GEPG__SP_CODE", "SP111"),
        ],
    );
    let u = Ussd::new(&server);
    // A member of imported family 1 renews by USSD, and pays through GePG.
    let cn = common::ussd::renew_and_pay(&u, "real-renew", "255754888001", "070707070");
    // The imported officer: a new family, a member added to it, a renewal in their village.
    officer_sms(
        &u,
        "reg-1",
        &format!("REG 4321 NEW Mrema Asha 12/03/1990 F {village} 0754777001 BCUL0001"),
    );
    std::thread::sleep(Duration::from_secs(2));
    wait_mirrored_within(&u, 1, Duration::from_secs(60));
    let head = q(
        r#"SELECT i."CHFID" FROM "tblInsuree" i WHERE i."LastName" = 'Mrema' AND i."ValidityTo" IS NULL"#,
    );
    assert_eq!(head.lines().count(), 1, "the REG head is central: {head:?}");
    officer_sms(
        &u,
        "add-1",
        &format!("ADD 4321 {head} NEW Mrema Juma 01/01/2015 M CHILD"),
    );
    officer_sms(&u, "renew-1", "RENEW 4321 110000001");
    // Let the writer drain and two pull ticks pass over our own rows.
    std::thread::sleep(Duration::from_secs(3));
    wait_mirrored_within(&u, 1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(7));
    wait_mirrored_within(&u, 1, Duration::from_secs(60));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(
        !logs.iter().any(|l| l.contains("pull failed")),
        "{}",
        logs.join("\n")
    );
    let replies = common::ussd::queued_sms(std::path::Path::new(data));
    assert!(
        !replies
            .iter()
            .any(|t| t.contains("PIN si sahihi") || t.contains("Wrong PIN")),
        "{replies:?}"
    );

    // Column by column: the renewal is Active with its Idle state as a history row.
    assert_eq!(
        q(&format!(
            r#"SELECT p."PolicyStatus", p."PolicyStage", h."PolicyStatus", h."LegacyID" = p."PolicyID",
                      p."EffectiveDate" IS NOT NULL, p."PolicyValue" > 0
               FROM "tblPolicy" p
               JOIN "tblPolicy" h ON h."LegacyID" = p."PolicyID" AND h."PolicyStatus" = 1
               JOIN "tblFamilies" f ON f."FamilyID" = p."FamilyID" AND f."ValidityTo" IS NULL
               JOIN "tblInsuree" i ON i."InsureeID" = f."InsureeID" AND i."CHFID" = '070707070'
               WHERE p."ValidityTo" IS NULL AND p."PolicyStage" = 'R'
                 AND EXISTS (SELECT 1 FROM "tblControlNumber" c WHERE c."ControlNumber" = '{cn}')"#
        )),
        "2|R|1|t|t|t"
    );
    // The expiry job: every stale Active demo policy is Expired (8), each with its history.
    assert_ne!(stale_active, "0");
    assert_eq!(
        q(
            r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NULL AND "PolicyStatus" = 2
             AND "ExpiryDate" < now()"#
        ),
        "0"
    );
    // The officer's family: head + child, one policy (Idle, stage N), the SMS preference.
    assert_eq!(
        q(
            r#"SELECT count(*) FROM "tblInsuree" i JOIN "tblFamilies" f ON f."FamilyID" = i."FamilyID"
               WHERE i."LastName" = 'Mrema' AND i."ValidityTo" IS NULL AND f."ValidityTo" IS NULL"#
        ),
        "2"
    );
    // The officer's renewal of family 110000001: a new Idle renewal policy.
    assert_eq!(
        q(
            r#"SELECT p."PolicyStatus", p."PolicyStage" FROM "tblPolicy" p
               JOIN "tblFamilies" f ON f."FamilyID" = p."FamilyID" AND f."ValidityTo" IS NULL
               JOIN "tblInsuree" i ON i."InsureeID" = f."InsureeID" AND i."CHFID" = '110000001'
               WHERE p."ValidityTo" IS NULL AND p."PolicyStage" = 'R'"#
        ),
        "1|R"
    );
    // LegacyID: every history row the loop wrote points at its table's row (upstream's demo
    // data has history rows of its own that point nowhere: their count is unchanged).
    assert_eq!(q(ORPHAN_HISTORY), orphans_before);
    let (code, text) = verify(data, &dsn);
    assert_eq!(code, Some(0), "after the loop: {text}");
    assert!(text.contains("differences 0"), "{text}");
}

fn verify(data: &str, dsn: &str) -> (Option<i32>, String) {
    let out = common::run(&["mirror", "verify", "--data-dir", data, "--dsn", dsn], &[]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_whole_loop_on_the_real_scripts_database() {
    the_loop(Variant::Scripts);
}

#[test]
fn the_whole_loop_on_the_django_migrated_database() {
    the_loop(Variant::Migrated);
}
