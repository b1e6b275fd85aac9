//! `serve --demo` with the mirror on, against the real openIMIS schema
//! (tests/third_party/openimis-db): the demo world exists centrally too, so renew → pay →
//! `mirror verify` is clean. An empty central database gets our demo world; one that already
//! has an openIMIS world (upstream's demo data) is imported instead and never written over.

mod common;

use std::time::Duration;

use common::mirror::{mirror_health, mirrored_server_to, wait_mirrored_within};
use common::openimis_db::{Data, OpenImisPg};
use common::ussd::Ussd;
use imis_gateway::store::Store;

fn verify(dir: &std::path::Path, dsn: &str) -> (Option<i32>, String) {
    let out = common::run(
        &[
            "mirror",
            "verify",
            "--data-dir",
            dir.to_str().unwrap(),
            "--dsn",
            dsn,
        ],
        &[],
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

const CURRENT_FAMILIES: &str = r#"SELECT count(*) FROM "tblFamilies" WHERE "ValidityTo" IS NULL"#;

#[test]
fn the_demo_world_is_seeded_into_an_empty_openimis_database_and_renew_pay_verify_is_clean() {
    let oi = OpenImisPg::start();
    let dsn = oi.create("demo_seeded", Data::Empty);
    let dir = tempfile::tempdir().unwrap();
    let server = mirrored_server_to(&dsn, dir.path(), &[]);
    let u = Ussd::new(&server);
    // The whole demo world is queued at start: wait until it is all central.
    let seeded = wait_mirrored_within(&u, 1, Duration::from_secs(120));
    let seeded_applied = seeded["applied_total"].as_u64().unwrap();
    assert!(seeded_applied > 1000, "{seeded}");

    let cn = common::ussd::renew_and_pay(&u, "central-renew", "255754100002", "100000014");
    // Renewal (policy, member rows, payment, detail, control number) and payment
    // (premium, policy, member rows, payment): well past a handful of writes more.
    wait_mirrored_within(&u, seeded_applied + 5, Duration::from_secs(60));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = Store::open(dir.path(), Default::default()).unwrap();
    let families = store.counts().unwrap().families;
    drop(store);
    assert_eq!(
        oi.pg.query_in("demo_seeded", CURRENT_FAMILIES),
        families.to_string()
    );
    assert_eq!(
        oi.pg.query_in(
            "demo_seeded",
            &format!(
                r#"SELECT p."PolicyStatus", p."PolicyStage" FROM "tblPolicy" p
                   JOIN "tblPayment" pay ON true
                   JOIN "tblControlNumber" c ON c."PaymentID" = pay."PaymentID"
                   JOIN "tblPaymentDetails" d ON d."PaymentID" = pay."PaymentID"
                   JOIN "tblInsuree" i ON i."CHFID" = d."InsuranceNumber" AND i."ValidityTo" IS NULL
                   WHERE c."ControlNumber" = '{cn}' AND c."ValidityTo" IS NULL
                     AND pay."ValidityTo" IS NULL AND d."ValidityTo" IS NULL
                     AND p."FamilyID" = i."FamilyID"
                     AND p."ValidityTo" IS NULL AND p."PolicyStage" = 'R'"#
            )
        ),
        "2|R",
        "the paid renewal is Active centrally"
    );
    let (code, text) = verify(dir.path(), &dsn);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("differences 0"), "{text}");
}

#[test]
fn a_central_database_with_a_world_is_imported_as_the_demo_and_not_written_over() {
    let oi = OpenImisPg::start();
    let dsn = oi.create("demo_real", Data::Demo);
    let before = oi.pg.query_in("demo_real", CURRENT_FAMILIES);
    let dir = tempfile::tempdir().unwrap();
    let server = mirrored_server_to(&dsn, dir.path(), &[]);
    let u = Ussd::new(&server);
    let h = mirror_health(&u);
    assert_eq!(h["rejected_total"], 0, "{h}");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(
        logs.iter()
            .any(|l| l.contains("central database's world imported")),
        "{}",
        logs.join("\n")
    );
    let store = Store::open(dir.path(), Default::default()).unwrap();
    assert_eq!(store.counts().unwrap().families.to_string(), before);
    // None of our demo CHFIDs exists: the store is a copy of the central world.
    // (070707070 is in both worlds: the wiki's sample number.)
    let ours = imis_gateway::domain::Chfid::parse("100000014").unwrap();
    assert!(store.insuree_by_chfid(ours).unwrap().is_none());
    drop(store);
    assert_eq!(oi.pg.query_in("demo_real", CURRENT_FAMILIES), before);
    let (code, text) = verify(dir.path(), &dsn);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn demo_with_the_mirror_on_and_the_central_database_down_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[
            ("IMIS_GATEWAY_MIRROR__ENABLED", "true"),
            (
                "IMIS_GATEWAY_MIRROR__DSN",
                "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=2",
            ),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--demo with the mirror on reads the central database at start"),
        "{err}"
    );
    let store = Store::open(dir.path(), Default::default()).unwrap();
    assert_eq!(store.counts().unwrap().families, 0, "nothing seeded");
}
