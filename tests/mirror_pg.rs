//! The mirror against a real PostgreSQL holding the REAL openIMIS schema (upstream's
//! scripts, tests/third_party/openimis-db/; tests/common/pg.rs).
//!
//! Each test starts its own cluster (tests/common/pg.rs); PostgreSQL missing is a failure.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use chrono::NaiveDate;
use common::mirror::{mirror_health, mirrored_server, wait_mirrored_within};
use common::pg::Pg;
use imis_gateway::domain::*;
use imis_gateway::mirror::verify::{verify, VerifyReport};
use imis_gateway::mirror::writer::{apply_batch, Outcome};
use imis_gateway::mirror::{pull, MirrorWriter, WriterOptions};
use imis_gateway::shutdown::Shutdown;
use imis_gateway::store::{OutboxItem, Store, TxResult, MIRROR_TOPIC};
use uuid::Uuid;

/// Central lookups: region → district → ward → village 'V0111', product CHF01.
const SEED: &str = r#"
INSERT INTO "tblLocations" ("LocationUUID","LocationCode","LocationName","LocationType","ParentLocationId","ValidityFrom","AuditUserId")
VALUES ('00000000-0000-4000-8000-000000000001','R01','Dodoma','R',NULL,now(),1);
INSERT INTO "tblLocations" ("LocationUUID","LocationCode","LocationName","LocationType","ParentLocationId","ValidityFrom","AuditUserId")
SELECT '00000000-0000-4000-8000-000000000002','D01','Kongwa','D',"LocationId",now(),1 FROM "tblLocations" WHERE "LocationCode"='R01';
INSERT INTO "tblLocations" ("LocationUUID","LocationCode","LocationName","LocationType","ParentLocationId","ValidityFrom","AuditUserId")
SELECT '00000000-0000-4000-8000-000000000003','V0111','Mlali','V',"LocationId",now(),1 FROM "tblLocations" WHERE "LocationCode"='D01';
INSERT INTO "tblLocations" ("LocationUUID","LocationCode","LocationName","LocationType","ParentLocationId","ValidityFrom","ValidityTo","LegacyID","AuditUserId")
VALUES ('00000000-0000-4000-8000-000000000009','V0111','Old name','V',NULL,now() - interval '1 day',now(),3,1);
INSERT INTO "tblProduct" ("ProdUUID","ProductCode","ProductName","DateFrom","DateTo","InsurancePeriod","LumpSum","MemberCount","GracePeriod","ValidityFrom","AuditUserID","AccCodePremiums")
VALUES ('00000000-0000-4000-8000-000000000010','CHF01','CHF Iliyoboreshwa','2020-01-01','2030-12-31',12,30000,6,1,now(),1,'SP111');
"#;

fn seeded() -> (Pg, Store) {
    seeded_into(Store::open_temporary().unwrap())
}

/// A seeded central database, imported into `store`.
fn seeded_into(store: Store) -> (Pg, Store) {
    let pg = Pg::start();
    for stmt in SEED.split(";\n").filter(|s| !s.trim().is_empty()) {
        pg.query(stmt);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        let counts = pull::import(&c, &store, |_, _| {}).await.unwrap();
        // The 4 locations the real scripts ship (R1 › R1D1 › R1D1M1 › R1D1M1V1) and the
        // 3 seeded; not the seeded history row.
        assert!(
            counts.contains(&("tblLocations", 7)),
            "{counts:?}: history rows are not imported"
        );
        assert!(counts.contains(&("tblProduct", 1)));
    });
    (pg, store)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

struct Enrolled {
    family: Id,
    policy: Id,
}

/// An SMS enrolment: family, head, one child, policy, coverage rows and a premium.
fn enrol(store: &Store, n: u32, child_name: &str) -> Enrolled {
    let village = store.location_by_code("V0111").unwrap().unwrap().id;
    let product = store.product_by_code("CHF01").unwrap().unwrap().id;
    let ids: Vec<Id> = (0..7).map(|_| store.next_id().unwrap()).collect();
    let (fam, head, child, pol, ip1, ip2, prem) =
        (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6]);
    let w: Result<(), _> = store.write(|tx| -> TxResult<(), Infallible> {
        tx.put_family(&common::seed::family(fam, head, village))?;
        let person = |id, base: u32, is_head: bool, name: &str| Insuree {
            id,
            uuid: Uuid::from_u128(u128::from(id) << 64 | u128::from(base)),
            chfid: Chfid::from_base(base).unwrap(),
            family: fam,
            is_head,
            last_name: name.to_string(),
            other_names: "Juma".into(),
            dob: d(1985, 6, 1),
            gender: Gender::Male,
            relationship: if is_head {
                None
            } else {
                Some(Relationship::Child)
            },
            phone: if is_head {
                Msisdn::parse("0754100001").ok()
            } else {
                None
            },
            card_issued: false,
        };
        tx.put_insuree(&person(head, 1_000_000 + 2 * n, true, "Hamisi"))?;
        tx.put_insuree(&person(child, 1_000_001 + 2 * n, false, child_name))?;
        tx.put_policy(&Policy {
            id: pol,
            uuid: Uuid::new_v4(),
            family: fam,
            product,
            officer: None,
            stage: PolicyStage::New,
            status: PolicyStatus::Active,
            value: Money::tzs(30_000),
            enroll_date: d(2024, 1, 10),
            start_date: d(2024, 1, 10),
            effective_date: Some(d(2024, 1, 10)),
            expiry_date: d(2025, 1, 9),
            self_renewed: false,
        })?;
        for (ip, who) in [(ip1, head), (ip2, child)] {
            tx.put_insuree_policy(&InsureePolicy {
                id: ip,
                insuree: who,
                policy: pol,
                enrollment_date: d(2024, 1, 10),
                start_date: d(2024, 1, 10),
                effective_date: Some(d(2024, 1, 10)),
                expiry_date: d(2025, 1, 9),
            })?;
        }
        tx.put_premium(&Premium {
            id: prem,
            uuid: Uuid::new_v4(),
            policy: pol,
            amount: Money::tzs(30_000),
            receipt: format!("RCPT{n}"),
            pay_date: d(2024, 1, 10),
            pay_type: PayType::Mobile,
            is_photo_fee: false,
        })?;
        Ok(())
    });
    w.unwrap();
    Enrolled {
        family: fam,
        policy: pol,
    }
}

fn set_status(store: &Store, policy: Id, status: PolicyStatus) {
    store
        .write(|tx| -> TxResult<(), Infallible> {
            let mut p = tx.policy(policy)?.unwrap();
            p.status = status;
            tx.put_policy(&p)?;
            Ok(())
        })
        .unwrap();
}

/// Claims the mirror backlog as the writer does (one batch, a short lease), for a test that
/// applies it by hand.
fn claim_mirror_batch(store: &Store) -> Vec<OutboxItem> {
    store
        .claim(
            MIRROR_TOPIC,
            100,
            Duration::from_millis(500),
            chrono::Utc::now(),
        )
        .unwrap()
}

fn writer(store: &Store, pg: &Pg) -> MirrorWriter {
    let opts = WriterOptions {
        lease: Duration::from_secs(2),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        ..WriterOptions::default()
    };
    MirrorWriter::new(store.clone(), pg.dsn(), opts)
}

/// Steps the writer until the topic is empty; returns how many steps failed. Gives up
/// (failing the test with the last error) after 30 s.
async fn drain(w: &MirrorWriter, store: &Store) -> usize {
    let mut client = None;
    let mut held = Vec::new();
    let mut failures = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last_error = String::new();
    while std::time::Instant::now() < deadline {
        match w.step(&mut client, &mut held).await {
            Ok(0) if held.is_empty() && store.pending_count(MIRROR_TOPIC).unwrap() == 0 => {
                return failures
            }
            Ok(_) => {}
            Err(e) => {
                last_error = e.to_string();
                failures += 1;
                client = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!(
        "mirror did not drain in 30 s: {} pending, {failures} failed steps, last error: {last_error}",
        store.pending_count(MIRROR_TOPIC).unwrap()
    );
}

/// `mirror verify` against the test's database.
fn verified(rt: &tokio::runtime::Runtime, pg: &Pg, store: &Store) -> VerifyReport {
    rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        verify(&c, store).await.unwrap()
    })
}

/// Asserts that `mirror verify` finds nothing, and that it checked something.
fn assert_consistent(rt: &tokio::runtime::Runtime, pg: &Pg, store: &Store) {
    let r = verified(rt, pg, store);
    let listed: Vec<String> = r.differences.iter().map(|d| d.to_string()).collect();
    assert!(listed.is_empty(), "verify: {listed:#?}");
    assert_eq!(r.pending, 0, "{r:?}");
    assert!(r.checked > 0, "{r:?}");
}

#[test]
fn enrolment_and_policy_update_produce_rows_history_rows_and_no_duplicates_on_replay() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = enrol(&store, 1, "Hamisi");
    let w = writer(&store, &pg);
    rt.block_on(drain(&w, &store));

    let fam = store.family(e.family).unwrap().unwrap();
    let head_chfid = Chfid::from_base(1_000_002).unwrap().to_string();
    let row = pg.query(&format!(
        r#"SELECT f."LocationId" = l."LocationId", f."AuditUserID", i."CHFID", i."IsHead", f."ValidityTo" IS NULL,
                  f."Poverty", i."DOB", i."Gender", i."Phone", i."AuditUserID"
           FROM "tblFamilies" f JOIN "tblInsuree" i ON i."InsureeID" = f."InsureeID"
           JOIN "tblLocations" l ON l."LocationCode" = 'V0111' AND l."ValidityTo" IS NULL
           WHERE f."FamilyUUID" = '{}'"#,
        fam.uuid
    ));
    assert_eq!(
        row,
        format!("t|-3|{head_chfid}|t|t|f|1985-06-01|M|255754100001|-3")
    );
    // The child: same family, not head, relationship 4 (son/daughter).
    assert_eq!(
        pg.query(
            r#"SELECT c."IsHead", c."Relationship", c."FamilyID" = h."FamilyID", c."Phone" IS NULL
               FROM "tblInsuree" c JOIN "tblInsuree" h ON h."IsHead" WHERE NOT c."IsHead""#
        ),
        "f|4|t|t"
    );
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblInsuree" WHERE "ValidityTo" IS NULL"#),
        "2"
    );
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblInsuree" i JOIN "tblFamilies" f USING ("FamilyID")"#),
        "2"
    );
    // One coverage row per member, carrying the policy's dates.
    assert_eq!(
        pg.query(
            r#"SELECT count(*), min(ip."EffectiveDate")::text, max(ip."ExpiryDate")::text,
                      bool_and(ip."PolicyId" = p."PolicyID"), min(ip."AuditUserID")
               FROM "tblInsureePolicy" ip JOIN "tblPolicy" p ON p."PolicyID" = ip."PolicyId""#
        ),
        "2|2024-01-10|2025-01-09|t|-3"
    );
    assert_eq!(
        pg.query(r#"SELECT approvalofsms, languageofsms, validityto IS NULL FROM "tblFamilySMS""#),
        "t|sw|t"
    );
    let pol = store.policy(e.policy).unwrap().unwrap();
    let q_policy = format!(
        r#"SELECT "PolicyStatus", "PolicyValue", "PolicyStage", "EnrollDate", "EffectiveDate", "ExpiryDate", "AuditUserID", "LegacyID" IS NULL
           FROM "tblPolicy" WHERE "PolicyUUID" = '{}'"#,
        pol.uuid
    );
    assert_eq!(
        pg.query(&q_policy),
        "2|30000.00|N|2024-01-10|2024-01-10|2025-01-09|-3|t"
    );
    assert_eq!(
        pg.query(r#"SELECT "Amount", "Receipt", "PayType", "PayDate", p."PolicyStatus", "tblPremium"."AuditUserID" FROM "tblPremium" JOIN "tblPolicy" p USING ("PolicyID")"#),
        "30000.00|RCPT1|M|2024-01-10|2|-3"
    );
    assert_consistent(&rt, &pg, &store);

    // A suspension: a history row with the old state, the current row updated in place.
    set_status(&store, e.policy, PolicyStatus::Suspended);
    rt.block_on(drain(&w, &store));
    assert_eq!(
        pg.query(&q_policy),
        "4|30000.00|N|2024-01-10|2024-01-10|2025-01-09|-3|t"
    );
    let hist = pg.query(
        r#"SELECT h."PolicyStatus", h."LegacyID" = c."PolicyID", h."PolicyUUID" <> c."PolicyUUID",
                  h."ValidityTo" IS NOT NULL, c."ValidityFrom" >= h."ValidityTo" - interval '1 second',
                  h."AuditUserID"
           FROM "tblPolicy" h JOIN "tblPolicy" c ON c."ValidityTo" IS NULL WHERE h."ValidityTo" IS NOT NULL"#,
    );
    assert_eq!(hist, "2|t|t|t|t|-3");
    assert_consistent(&rt, &pg, &store);

    // A batch committed centrally whose ack was lost (crash, or the connection cut before
    // the reply): the database is restarted, cutting every connection, and the writer claims
    // the batch again when its lease expires. Nothing is written twice.
    set_status(&store, e.policy, PolicyStatus::Active);
    let items = claim_mirror_batch(&store);
    assert_eq!(items.len(), 1);
    rt.block_on(async {
        let mut c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        for _ in 0..2 {
            let out = apply_batch(&mut c, &store, &items, -3).await.unwrap();
            assert_eq!(out, vec![Outcome::Applied]);
        }
    });
    pg.stop();
    pg.start_server();
    std::thread::sleep(Duration::from_millis(600));
    rt.block_on(drain(&w, &store));
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblPolicy""#),
        "3",
        "one current + two history rows"
    );
    assert_eq!(pg.query(&q_policy).split('|').next(), Some("2"));
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblFamilies""#), "1");
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblInsuree""#), "2");
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblPremium""#), "1");
    assert_consistent(&rt, &pg, &store);
}

#[test]
fn a_rejected_row_goes_to_the_dead_letters_with_its_reason_and_does_not_block_others() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // tblInsuree.LastName is varchar(100): the database refuses the child.
    let bad = enrol(&store, 1, &"X".repeat(150));
    let good = enrol(&store, 2, "Hamisi");
    rt.block_on(drain(&writer(&store, &pg), &store));
    // The child, and its coverage row (which needs the child's central id).
    let dead = store.dead(MIRROR_TOPIC).unwrap();
    let keys: Vec<&str> = dead.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(dead.len(), 2, "{keys:?}");
    assert!(keys[0].starts_with("insuree:"), "{keys:?}");
    assert!(keys[1].starts_with("insuree_policy:"), "{keys:?}");
    for d in &dead {
        assert!(d.last_error.starts_with("22001"), "{}", d.last_error);
    }
    // Everything else arrived, including the rest of the refused child's family.
    for e in [&bad, &good] {
        let u = store.policy(e.policy).unwrap().unwrap().uuid;
        let n = pg.query(&format!(
            r#"SELECT count(*) FROM "tblPolicy" WHERE "PolicyUUID" = '{u}'"#
        ));
        assert_eq!(n, "1");
    }
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblInsuree""#), "3");
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblInsureePolicy""#), "3");
    let h = imis_gateway::mirror::status::health(&store, true);
    assert_eq!(h["rejected_total"], 2, "{h}"); // the child and its coverage row
    assert!(
        h["recent_rejections"][0]
            .as_str()
            .unwrap()
            .contains("22001"),
        "{h}"
    );
    // verify lists exactly the two records that never arrived.
    let r = verified(&rt, &pg, &store);
    let listed: Vec<String> = r.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(listed[0].starts_with("insuree ") && listed[0].contains("never mirrored"));
    assert!(listed[1].starts_with("insuree_policy "), "{listed:#?}");
}

/// The writer's real loop (`serve` runs it): the database goes down for the duration of
/// 1,000 writes and comes back; all arrive, in order, once, and nothing is dead-lettered.
#[test]
fn a_backlog_written_while_the_database_is_down_arrives_in_order_without_loss_or_duplicates() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shutdown = Shutdown::new();
    let opts = WriterOptions {
        lease: Duration::from_millis(300),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        poll: Duration::from_millis(20),
        ..WriterOptions::default()
    };
    let w = MirrorWriter::new(store.clone(), pg.dsn(), opts);
    let task = rt.spawn(w.run(shutdown.signal()));
    let wait_drained = |what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while store.pending_count(MIRROR_TOPIC).unwrap() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: {} writes still pending; {}",
                store.pending_count(MIRROR_TOPIC).unwrap(),
                imis_gateway::mirror::status::health(&store, true)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    enrol(&store, 1000, "Kabla");
    wait_drained("before the outage");

    pg.stop();
    for n in 0..100 {
        let e = enrol(&store, n, "Hamisi");
        set_status(&store, e.policy, PolicyStatus::Suspended);
        set_status(&store, e.policy, PolicyStatus::Active);
        set_status(&store, e.policy, PolicyStatus::Expired);
    }
    assert_eq!(store.pending_count(MIRROR_TOPIC).unwrap(), 1000);
    std::thread::sleep(Duration::from_millis(800));
    let h = imis_gateway::mirror::status::health(&store, true);
    assert_eq!(h["state"], "unreachable", "{h}");
    assert!(h["lag_secs"].as_f64().unwrap() > 0.5, "{h}");
    assert_eq!(
        store.dead(MIRROR_TOPIC).unwrap().len(),
        0,
        "an outage is not a rejection"
    );

    pg.start_server();
    wait_drained("after the outage");
    shutdown.trigger();
    rt.block_on(task).unwrap();

    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblFamilies""#), "101");
    assert_eq!(
        pg.query(
            r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NULL AND "PolicyStatus" = 8"#
        ),
        "100"
    );
    // Three history rows per policy, in write order: Active, Suspended, Active.
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NOT NULL"#),
        "300"
    );
    let order = pg.query(
        r#"SELECT count(*) FROM (
             SELECT string_agg("PolicyStatus"::text, ',' ORDER BY "PolicyID") AS s
             FROM "tblPolicy" WHERE "ValidityTo" IS NOT NULL GROUP BY "LegacyID") h
           WHERE s = '2,4,2'"#,
    );
    assert_eq!(order, "100");
    assert_eq!(
        pg.query(r#"SELECT count(DISTINCT "PolicyUUID") FROM "tblPolicy""#),
        "401"
    );
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblInsuree""#), "202");
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblPremium""#), "101");
    assert_eq!(store.dead(MIRROR_TOPIC).unwrap().len(), 0);
    assert_consistent(&rt, &pg, &store);
}

#[test]
fn import_skips_history_rows_and_pull_applies_a_centrally_suspended_policy() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = enrol(&store, 1, "Hamisi");
    rt.block_on(drain(&writer(&store, &pg), &store));
    let uuid = store.policy(e.policy).unwrap().unwrap().uuid;
    // The web application suspends the policy (history row first, as openIMIS does).
    pg.query(&format!(
        r#"INSERT INTO "tblPolicy" ("PolicyUUID","FamilyID","EnrollDate","StartDate","EffectiveDate","ExpiryDate","PolicyStatus","PolicyValue","ProdID","OfficerID","PolicyStage","ValidityFrom","ValidityTo","LegacyID","AuditUserID")
           SELECT gen_random_uuid()::text,"FamilyID","EnrollDate","StartDate","EffectiveDate","ExpiryDate","PolicyStatus","PolicyValue","ProdID","OfficerID","PolicyStage","ValidityFrom",now(),"PolicyID","AuditUserID"
           FROM "tblPolicy" WHERE "PolicyUUID" = '{uuid}'"#
    ));
    pg.query(&format!(
        r#"UPDATE "tblPolicy" SET "PolicyStatus" = 4, "ValidityFrom" = clock_timestamp(), "AuditUserID" = 7 WHERE "PolicyUUID" = '{uuid}'"#
    ));
    // verify sees the central change the store has not pulled yet.
    let before = verified(&rt, &pg, &store);
    let listed: Vec<String> = before.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(
        listed[0].starts_with("policy ") && listed[0].contains("PolicyStatus store=2 central=4"),
        "{listed:#?}"
    );
    let report = rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        pull::pull_once(&c, &store).await.unwrap()
    });
    assert_eq!(report.conflicts, 0);
    assert!(report.applied >= 1, "{report:?}");
    assert_eq!(
        store.policy(e.policy).unwrap().unwrap().status,
        PolicyStatus::Suspended
    );
    assert_eq!(
        store.pending_count(MIRROR_TOPIC).unwrap(),
        0,
        "a pulled change is not echoed back"
    );
    // A second pull finds nothing new to apply.
    let again = rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        pull::pull_once(&c, &store).await.unwrap()
    });
    assert_eq!(again.applied, 0, "{again:?}");
    assert_consistent(&rt, &pg, &store);

    // A local write not yet mirrored wins over a central change of the same entity.
    set_status(&store, e.policy, PolicyStatus::Active);
    pg.query(&format!(
        r#"UPDATE "tblPolicy" SET "PolicyStatus" = 8, "ValidityFrom" = clock_timestamp() WHERE "PolicyUUID" = '{uuid}'"#
    ));
    let third = rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        pull::pull_once(&c, &store).await.unwrap()
    });
    assert_eq!(third.conflicts, 1, "{third:?}");
    assert_eq!(
        store.policy(e.policy).unwrap().unwrap().status,
        PolicyStatus::Active
    );
}

/// Neema (demo CHFID 100000014, expired CHF01 policy) renews by USSD; returns the control
/// number.
fn renew_by_ussd(u: &common::ussd::Ussd) -> String {
    use common::ussd::{walk, Dialog, Gw};
    let (mut s, _) = Dialog::dial(u, Gw::Json, "mirror-renew", "255754100002");
    walk(&mut s, &["2", "1", "100000014", "1"]);
    let (end, done) = s.send("1");
    assert!(end, "{done}");
    common::ussd::control_number(&done)
}

/// Waits until the server's mirror has nothing pending and applied `at_least` writes.
fn wait_mirrored(u: &common::ussd::Ussd, at_least: u64) -> serde_json::Value {
    wait_mirrored_within(u, at_least, Duration::from_secs(30))
}

/// A member renews by USSD (the real server over HTTP, `--demo` data, mirror enabled): the
/// Idle renewal policy, its member rows, the payment intent with its detail line and the
/// control number arrive in the central tables with openIMIS's codes and audit users. The
/// family, members and lookups the renewal refers to were never mirrored (demo data is bulk
/// loaded), so the writer inserts them from their current local state first.
#[test]
fn a_ussd_renewal_produces_the_policy_payment_and_control_number_rows() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = mirrored_server(&pg, dir.path(), &[]);
    let u = common::ussd::Ussd::new(&server);
    let cn = renew_by_ussd(&u);
    wait_mirrored(&u, 1);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = Store::open(dir.path(), Default::default()).unwrap();
    let payment = store.payment_by_control_number(&cn).unwrap().unwrap();
    let policy = store
        .policy(payment.details[0].policy.unwrap())
        .unwrap()
        .unwrap();
    let today = policy.enroll_date;
    // The renewal: stage R, Idle (1), not yet effective, value 30,000, the audit user of
    // the gateway (-3, external API), current row without history.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT "PolicyStage", "PolicyStatus", "EffectiveDate" IS NULL, "PolicyValue",
                      "EnrollDate", "StartDate", "ExpiryDate", "AuditUserID", "ValidityTo" IS NULL
               FROM "tblPolicy" WHERE "PolicyUUID" = '{}'"#,
            policy.uuid
        )),
        format!(
            "R|1|t|30000.00|{today}|{}|{}|-3|t",
            policy.start_date, policy.expiry_date
        )
    );
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NOT NULL"#),
        "0",
        "a new policy has no history row"
    );
    // One member row per family member, not effective until paid.
    let members = store.family_members(policy.family).unwrap().len();
    assert_eq!(
        pg.query(&format!(
            r#"SELECT count(*), bool_and(ip."EffectiveDate" IS NULL),
                      bool_and(ip."StartDate" = p."StartDate" AND ip."ExpiryDate" = p."ExpiryDate"),
                      bool_and(i."FamilyID" = p."FamilyID")
               FROM "tblInsureePolicy" ip JOIN "tblPolicy" p ON p."PolicyID" = ip."PolicyId"
               JOIN "tblInsuree" i ON i."InsureeID" = ip."InsureeID"
               WHERE p."PolicyUUID" = '{}'"#,
            policy.uuid
        )),
        format!("{members}|t|t|t")
    );
    // The payment intent with its control number assigned (3), system audit user (-1).
    assert_eq!(
        pg.query(&format!(
            r#"SELECT "PaymentStatus", "ExpectedAmount", "ReceivedAmount" IS NULL, "OfficerCode" IS NULL,
                      "PhoneNumber", "AuditedUSerID", "ValidityTo" IS NULL
               FROM "tblPayment" WHERE "PaymentUUID" = '{}'"#,
            payment.uuid
        )),
        "3|30000.00|t|t|255754100002|-1|t"
    );
    assert_eq!(
        pg.query(&format!(
            r#"SELECT d."InsuranceNumber", d."ProductCode", d."PolicyStage", d."ExpectedAmount",
                      d."PremiumID" IS NULL, d."AuditedUserId", d."PaymentID" = p."PaymentID"
               FROM "tblPaymentDetails" d JOIN "tblPayment" p ON p."PaymentID" = d."PaymentID"
               WHERE p."PaymentUUID" = '{}'"#,
            payment.uuid
        )),
        "100000014|CHF01|R|30000.00|t|-1|t"
    );
    // The control number: its key allocated by the writer (the real tblControlNumber has no
    // sequence), assigned (2) to the payment, the system user, no history yet.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT c."PaymentID" = p."PaymentID", c."AuditedUserID", c."Status",
                      c."ControlNumberID" > 0, c."LegacyID" IS NULL, c."RequestedDate" IS NOT NULL,
                      (SELECT count(*) = count(DISTINCT "ControlNumberID") FROM "tblControlNumber")
               FROM "tblControlNumber" c JOIN "tblPayment" p ON p."PaymentUUID" = '{}'
               WHERE c."ControlNumber" = '{cn}' AND c."ValidityTo" IS NULL"#,
            payment.uuid
        )),
        "t|-1|2|t|t|t|t"
    );
    // The family's SMS preference, in tblFamilySMS's lower-case columns.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT count(*), bool_and(s.validityfrom IS NOT NULL)
               FROM "tblFamilySMS" s JOIN "tblPolicy" p ON p."FamilyID" = s.familyid
               WHERE p."PolicyUUID" = '{}' AND s.validityto IS NULL"#,
            policy.uuid
        )),
        "1|t"
    );
    // The family the renewal belongs to arrived with it, head first.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT i."CHFID", i."IsHead" FROM "tblFamilies" f
               JOIN "tblInsuree" i ON i."InsureeID" = f."InsureeID"
               JOIN "tblPolicy" p ON p."FamilyID" = f."FamilyID" WHERE p."PolicyUUID" = '{}'"#,
            policy.uuid
        )),
        "100000014|t"
    );
    drop(store);
    // `mirror status` from the stopped server's store: nothing pending, nothing dead.
    let out = common::run(
        &[
            "mirror",
            "status",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("pending: 0") && text.contains("dead: 0"),
        "{text}"
    );
}

/// `imis-gateway mirror verify` on a stopped server's store: no differences after catch-up
/// (exit 0); a row changed centrally behind the gateway's back is listed (exit 1).
#[test]
fn the_verify_command_lists_differences_and_exits_nonzero_only_when_there_are_some() {
    let dir = tempfile::tempdir().unwrap();
    let (pg, store) = seeded_into(Store::open(dir.path(), Default::default()).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = enrol(&store, 1, "Hamisi");
    let w = writer(&store, &pg);
    rt.block_on(drain(&w, &store));
    let family = store.family(e.family).unwrap().unwrap();
    store.flush().unwrap();
    drop((w, store));
    let dsn = pg.dsn();
    let data_dir = dir.path().to_str().unwrap();
    let verify = || {
        let out = common::run(
            &["mirror", "verify", "--data-dir", data_dir, "--dsn", &dsn],
            &[],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = verify();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("differences 0"), "{text}");
    assert!(text.contains("pending 0"), "{text}");

    pg.query(&format!(
        r#"UPDATE "tblFamilies" SET "Poverty" = true WHERE "FamilyUUID" = '{}'"#,
        family.uuid
    ));
    let (code, text) = verify();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("family {} (tblFamilies ", e.family))
            && text.contains("Poverty store=false central=true;"),
        "{text}"
    );
    assert!(text.contains("differences 1"), "{text}");
}

/// The renewal is then paid through GePG (the simulator posts a signed payment notification
/// to the server): the premium, the activated policy with the Idle state kept as a history
/// row, the covered member rows (each with its history row) and the matched payment arrive.
#[test]
fn a_gepg_payment_activates_the_renewal_in_the_central_tables_with_history_rows() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = mirrored_server(&pg, dir.path(), &[]);
    let u = common::ussd::Ussd::new(&server);
    let cn = renew_by_ussd(&u);
    let applied = wait_mirrored(&u, 1)["applied_total"].as_u64().unwrap();
    let (status, body) = u.rt.block_on(async {
        let r = u
            .client
            .post(format!("{}/gepg-sim/pay", u.base))
            .json(&serde_json::json!({"control_number": cn}))
            .send()
            .await
            .expect("POST /gepg-sim/pay");
        (r.status().as_u16(), r.text().await.expect("body"))
    });
    assert_eq!(status, 200, "{body}");
    wait_mirrored(&u, applied + 1);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = Store::open(dir.path(), Default::default()).unwrap();
    let payment = store.payment_by_control_number(&cn).unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Matched, "{payment:?}");
    let policy = store
        .policy(payment.details[0].policy.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(policy.status, PolicyStatus::Active);
    let effective = policy.effective_date.unwrap();
    let premium = &store.premiums_of_policy(policy.id).unwrap()[0];
    // The policy: Active (2) in place, its Idle (1) state kept as a history row closed when
    // the current row's state began, with a key and UUID of its own.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT c."PolicyStatus", c."EffectiveDate", c."AuditUserID", h."PolicyStatus",
                      h."EffectiveDate" IS NULL, h."LegacyID" = c."PolicyID", h."PolicyStage",
                      h."ValidityTo" = c."ValidityFrom", h."PolicyID" <> c."PolicyID",
                      h."PolicyUUID" <> c."PolicyUUID", h."PolicyValue", h."ExpiryDate" = c."ExpiryDate"
               FROM "tblPolicy" c JOIN "tblPolicy" h ON h."LegacyID" = c."PolicyID"
               WHERE c."PolicyUUID" = '{}' AND c."ValidityTo" IS NULL"#,
            policy.uuid
        )),
        format!("2|{effective}|-3|1|t|t|R|t|t|t|30000.00|t")
    );
    // The control number as the store has it now; any earlier state is a history row of
    // its own key (allocated, as the current row's was) pointing at the current row.
    let number = store.control_number_by_number(&cn).unwrap().unwrap();
    let code = imis_gateway::mirror::tables::control_number::status_code(number.status);
    assert_eq!(
        pg.query(&format!(
            r#"SELECT c."Status", c."PaymentID" = p."PaymentID",
                      count(h.*) = count(h."ValidityTo"),
                      bool_and(h."ControlNumberID" IS NULL OR h."ControlNumberID" <> c."ControlNumberID"),
                      (SELECT count(*) = count(DISTINCT "ControlNumberID") FROM "tblControlNumber")
               FROM "tblControlNumber" c JOIN "tblPayment" p ON p."PaymentUUID" = '{}'
               LEFT JOIN "tblControlNumber" h ON h."LegacyID" = c."ControlNumberID"
               WHERE c."ControlNumber" = '{cn}' AND c."ValidityTo" IS NULL
               GROUP BY c."Status", c."PaymentID", p."PaymentID", c."ControlNumberID""#,
            payment.uuid
        )),
        format!("{code}|t|t|t|t")
    );
    // The premium, on the renewal policy.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT pr."Amount", pr."PayType", pr."Receipt", pr."PayDate", pr."AuditUserID",
                      p."PolicyUUID" = '{}'
               FROM "tblPremium" pr JOIN "tblPolicy" p ON p."PolicyID" = pr."PolicyID"
               WHERE pr."PremiumUUID" = '{}'"#,
            policy.uuid, premium.uuid
        )),
        format!(
            "30000.00|{}|{}|{}|-3|t",
            premium.pay_type.code(),
            premium.receipt,
            premium.pay_date
        )
    );
    // Every member covered from the effective date; the uncovered rows are history.
    let members = store.family_members(policy.family).unwrap().len();
    assert_eq!(
        pg.query(&format!(
            r#"SELECT count(*) FILTER (WHERE ip."ValidityTo" IS NULL AND ip."EffectiveDate" = '{effective}'),
                      count(*) FILTER (WHERE ip."ValidityTo" IS NOT NULL AND ip."EffectiveDate" IS NULL
                                       AND ip."LegacyID" IS NOT NULL)
               FROM "tblInsureePolicy" ip JOIN "tblPolicy" p ON p."PolicyID" = ip."PolicyId"
               WHERE p."PolicyUUID" = '{}'"#,
            policy.uuid
        )),
        format!("{members}|{members}")
    );
    // The payment: matched (5) with the amount received, the assigned state (3) as history;
    // its detail line points at the premium.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT c."PaymentStatus", c."ReceivedAmount", c."TransactionNo" IS NOT NULL,
                      c."MatchedDate" IS NOT NULL, c."AuditedUSerID",
                      string_agg(h."PaymentStatus"::text, ',' ORDER BY h."PaymentID")
               FROM "tblPayment" c LEFT JOIN "tblPayment" h ON h."LegacyID" = c."PaymentID"
               WHERE c."PaymentUUID" = '{}' AND c."ValidityTo" IS NULL
               GROUP BY 1, 2, 3, 4, 5"#,
            payment.uuid
        )),
        "5|30000.00|t|t|-1|3"
    );
    assert_eq!(
        pg.query(&format!(
            r#"SELECT d."Amount", pr."PremiumUUID" = '{}', d."AuditedUserId"
               FROM "tblPaymentDetails" d JOIN "tblPremium" pr ON pr."PremiumId" = d."PremiumID"
               WHERE d."ValidityTo" IS NULL"#,
            premium.uuid
        )),
        "30000.00|t|-1"
    );
}

/// TLS is chosen by the DSN, as with libpq: verify-full checks the chain and the host name,
/// verify-ca only the chain, and the mirror writes over the verified connection.
#[test]
fn the_mirror_connects_over_tls_as_the_dsn_asks_and_refuses_an_unverifiable_server() {
    let (pg, store) = seeded();
    let crt = pg.enable_tls();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = format!(
        "port={} user=postgres dbname=postgres connect_timeout=5",
        pg.port
    );
    let root = format!("sslrootcert={}", crt.display());
    let connects = |dsn: String| {
        rt.block_on(async {
            match imis_gateway::mirror::connect(&dsn).await {
                Ok(c) => {
                    let r = c
                        .query_one(
                            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                            &[],
                        )
                        .await
                        .unwrap();
                    Ok(r.get::<_, bool>(0))
                }
                Err(e) => Err(e.to_string()),
            }
        })
    };
    let full = format!("host=localhost {base} sslmode=verify-full {root}");
    assert_eq!(connects(full.clone()), Ok(true));
    assert_eq!(
        connects(format!("host=127.0.0.1 {base} sslmode=verify-ca {root}")),
        Ok(true)
    );
    assert_eq!(connects(format!("host=127.0.0.1 {base}")), Ok(false));
    // The certificate names localhost, not 127.0.0.1; and it is not in the system roots.
    assert!(connects(format!("host=127.0.0.1 {base} sslmode=verify-full {root}")).is_err());
    assert!(connects(format!("host=localhost {base} sslmode=verify-ca")).is_err());
    assert!(connects(format!("host=localhost {base} sslmode=requir")).is_err());

    let e = enrol(&store, 1, "Hamisi");
    let w = MirrorWriter::new(store.clone(), full, WriterOptions::default());
    rt.block_on(drain(&w, &store));
    let u = store.policy(e.policy).unwrap().unwrap().uuid;
    assert_eq!(
        pg.query(&format!(
            r#"SELECT count(*) FROM "tblPolicy" WHERE "PolicyUUID" = '{u}'"#
        )),
        "1"
    );
}

/// An enrolment officer registers a family by SMS (`POST /sms/inbound`, the real server,
/// mirror enabled): the family, its head, the New Idle policy with the officer, the member
/// row, the family's SMS preference and the payment intent arrive in the central tables.
#[test]
fn an_sms_enrolment_produces_the_family_head_policy_and_member_rows() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = mirrored_server(&pg, dir.path(), &[]);
    let u = common::ussd::Ussd::new(&server);
    let (status, body) = u.rt.block_on(async {
        let r = u
            .client
            .post(format!("{}/sms/inbound", u.base))
            .header(
                common::sms::inbound_headers().0,
                common::sms::inbound_headers().1,
            )
            .json(&serde_json::json!({
                "from": "255754000001", "to": "15200", "id": "mirror-reg-1",
                "text": "SAJILI 1234 MPYA Mushi Neema Juma 12/03/1990 KE V0111 0754111222"
            }))
            .send()
            .await
            .expect("POST /sms/inbound");
        (r.status().as_u16(), r.text().await.expect("body"))
    });
    assert_eq!(status, 200, "{body}");
    // The officer's command runs after the MO is durable; wait for its head in the central
    // database, then for the mirror to have nothing pending.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pg.query(r#"SELECT count(*) FROM "tblInsuree" WHERE "Phone" = '255754111222'"#) != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "no enrolment arrived: {}",
            mirror_health(&u)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_mirrored(&u, 1);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));

    let store = Store::open(dir.path(), Default::default()).unwrap();
    let phone = Msisdn::parse("0754111222").unwrap();
    let family = store.families_by_phone(&phone).unwrap().remove(0);
    let head = store.insuree(family.head).unwrap().unwrap();
    let policy = store.family_policies(family.id).unwrap().remove(0);
    let eo = store.officer_by_code("EO0001").unwrap().unwrap();
    assert_eq!(
        pg.query(&format!(
            r#"SELECT i."CHFID", i."LastName", i."OtherNames", i."DOB", i."Gender", i."IsHead",
                      i."CardIssued", i."AuditUserID", f."AuditUserID", l."LocationCode",
                      f."InsureeID" = i."InsureeID", i."FamilyID" = f."FamilyID"
               FROM "tblFamilies" f JOIN "tblInsuree" i ON i."InsureeUUID" = '{}'
               JOIN "tblLocations" l ON l."LocationId" = f."LocationId"
               WHERE f."FamilyUUID" = '{}' AND f."ValidityTo" IS NULL"#,
            head.uuid, family.uuid
        )),
        format!(
            "{}|Mushi|Neema Juma|1990-03-12|F|t|f|-3|-3|V0111|t|t",
            head.chfid
        )
    );
    assert_eq!(
        pg.query(&format!(
            r#"SELECT s.approvalofsms, s.languageofsms FROM "tblFamilySMS" s
                   JOIN "tblFamilies" f ON f."FamilyID" = s.familyid
                   WHERE s.validityto IS NULL AND f."FamilyUUID" = '{}'"#,
            family.uuid
        )),
        "t|sw"
    );
    // The preference row belongs to the central family.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT count(*) FROM "tblFamilySMS" s JOIN "tblFamilies" f ON f."FamilyID" = s.familyid
               WHERE f."FamilyUUID" = '{}' AND s.validityto IS NULL"#,
            family.uuid
        )),
        "1"
    );
    // The officer arrived with their villages, one current row each, the gateway's user.
    let villages: Vec<String> = eo
        .villages
        .iter()
        .map(|v| store.location(*v).unwrap().unwrap().code)
        .collect();
    assert!(!villages.is_empty());
    assert_eq!(
        pg.query(&format!(
            r#"SELECT string_agg(l."LocationCode", ',' ORDER BY l."LocationCode"),
                      bool_and(v."AuditUserID" = -3), bool_and(v."ValidityFrom" IS NOT NULL)
               FROM "tblOfficerVillages" v JOIN "tblOfficer" o ON o."OfficerID" = v."OfficerId"
               JOIN "tblLocations" l ON l."LocationId" = v."LocationId"
               WHERE o."Code" = '{}' AND v."ValidityTo" IS NULL AND o."ValidityTo" IS NULL"#,
            eo.code
        )),
        format!("{}|t|t", {
            let mut v = villages.clone();
            v.sort();
            v.join(",")
        })
    );
    // A New policy, Idle until paid, sold by the officer (mirrored with it: the officer
    // row carries the code the central office knows).
    assert_eq!(
        pg.query(&format!(
            r#"SELECT p."PolicyStage", p."PolicyStatus", p."EffectiveDate" IS NULL, p."EnrollDate",
                      p."StartDate", p."ExpiryDate", p."PolicyValue", o."Code", p."AuditUserID",
                      pr."ProductCode"
               FROM "tblPolicy" p JOIN "tblOfficer" o ON o."OfficerID" = p."OfficerID"
               JOIN "tblProduct" pr ON pr."ProdID" = p."ProdID"
               WHERE p."PolicyUUID" = '{}'"#,
            policy.uuid
        )),
        format!(
            "N|1|t|{}|{}|{}|{}.00|{}|-3|CHF01",
            policy.enroll_date,
            policy.start_date,
            policy.expiry_date,
            policy.value.cents() / 100,
            eo.code
        )
    );
    assert_eq!(
        pg.query(&format!(
            r#"SELECT count(*), bool_and(ip."InsureeID" = i."InsureeID"), bool_and(ip."EffectiveDate" IS NULL)
               FROM "tblInsureePolicy" ip JOIN "tblPolicy" p ON p."PolicyID" = ip."PolicyId"
               JOIN "tblInsuree" i ON i."InsureeUUID" = '{}'
               WHERE p."PolicyUUID" = '{}'"#,
            head.uuid, policy.uuid
        )),
        "1|t|t"
    );
    // The payment intent for the new policy: stage N, the head's CHFID, the system user.
    assert_eq!(
        pg.query(&format!(
            r#"SELECT d."PolicyStage", d."ProductCode", d."AuditedUserId", p."AuditedUSerID"
               FROM "tblPaymentDetails" d JOIN "tblPayment" p ON p."PaymentID" = d."PaymentID"
               WHERE d."InsuranceNumber" = '{}' AND d."ValidityTo" IS NULL"#,
            head.chfid
        )),
        "N|CHF01|-1|-1"
    );
}

#[test]
fn a_replayed_batch_with_an_insert_and_a_later_update_keeps_the_newer_state() {
    // Found by the crash test: kill -9 after the central commit, before the acks reached
    // the disk. The batch holds a policy's insert (Idle) and its update (Active); applying
    // it again must not put the Idle state back over the Active row.
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = enrol(&store, 7, "Zawadi");
    set_status(&store, e.policy, PolicyStatus::Active);
    let items = claim_mirror_batch(&store);
    let policy_writes = items
        .iter()
        .filter(|i| i.key.starts_with("policy:"))
        .count();
    assert_eq!(policy_writes, 2, "insert and update in one batch");
    let uuid = store.policy(e.policy).unwrap().unwrap().uuid;
    let current = format!(
        r#"SELECT "PolicyStatus" FROM "tblPolicy" WHERE "PolicyUUID" = '{uuid}' AND "ValidityTo" IS NULL"#
    );
    let rows = r#"SELECT count(*) FROM "tblPolicy""#;
    use imis_gateway::mirror::idmap;
    let mut mapped_before = std::collections::HashSet::new();
    for ns in [idmap::NS, idmap::NS_REV] {
        for (k, _) in store.aux_scan(ns, b"").unwrap() {
            mapped_before.insert((ns, k));
        }
    }
    rt.block_on(async {
        let mut c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        let out = apply_batch(&mut c, &store, &items, -3).await.unwrap();
        assert!(out.iter().all(|o| *o == Outcome::Applied), "{out:?}");
        assert_eq!(pg.query(&current), "2");
        let after_first = pg.query(rows);
        // The crash also lost the id map entries written after that commit.
        for ns in [idmap::NS, idmap::NS_REV] {
            for (k, _) in store.aux_scan(ns, b"").unwrap() {
                if !mapped_before.contains(&(ns, k.clone())) {
                    store.aux_remove(ns, &k).unwrap();
                }
            }
        }
        for _ in 0..2 {
            let out = apply_batch(&mut c, &store, &items, -3).await.unwrap();
            assert!(out.iter().all(|o| *o == Outcome::Applied), "{out:?}");
            assert_eq!(pg.query(&current), "2", "the replay rolled the policy back");
            assert_eq!(pg.query(rows), after_first, "the replay wrote rows");
        }
    });
    let last = pg.query(r#"SELECT last_seq FROM imis_gateway_mirror_progress"#);
    let max_seq = items.iter().map(|i| i.seq).max().unwrap();
    assert_eq!(last, max_seq.to_string());
    // The writer claims the batch again once its lease is over, acknowledges it without
    // applying it, and everything agrees.
    std::thread::sleep(Duration::from_millis(600));
    let w = writer(&store, &pg);
    rt.block_on(drain(&w, &store));
    assert_consistent(&rt, &pg, &store);
}

/// `n` pool control numbers `<tag>0000`.. in `store` (no payment: each row stands alone).
fn pool_numbers(store: &Store, tag: &str, n: usize) -> Vec<Id> {
    (0..n)
        .map(|i| {
            let id = store.next_id().unwrap();
            let cn = ControlNumber {
                id,
                number: format!("{tag}{i:04}"),
                status: ControlNumberStatus::Pooled,
                payment: None,
                product: None,
                requested_date: chrono::Utc::now(),
                received_date: None,
            };
            store
                .write(|tx| -> TxResult<(), Infallible> {
                    tx.put_control_number(&cn)?;
                    Ok(())
                })
                .unwrap();
            id
        })
        .collect()
}

fn assign_all(store: &Store, ids: &[Id]) {
    for &id in ids {
        store
            .write(|tx| -> TxResult<(), Infallible> {
                let mut c = tx.control_number(id)?.unwrap();
                c.status = ControlNumberStatus::Assigned;
                tx.put_control_number(&c)?;
                Ok(())
            })
            .unwrap();
    }
}

/// A writer of small batches, so that two of them interleave many transactions.
fn small_batch_writer(store: &Store, pg: &Pg) -> MirrorWriter {
    let opts = WriterOptions {
        batch_size: 3,
        lease: Duration::from_secs(2),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        ..WriterOptions::default()
    };
    MirrorWriter::new(store.clone(), pg.dsn(), opts)
}

/// Inserts rows into tblControlNumber as a careless client would (`max + 1`, no lock),
/// each in a transaction it keeps open a little, until `stop`; returns how many it inserted.
/// A writer reading `max` while such a row is uncommitted would take the same key.
async fn plain_sql_inserter(
    dsn: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    use std::sync::atomic::Ordering;
    let mut c = imis_gateway::mirror::connect(&dsn).await.unwrap();
    let mut ok = 0;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let tx = c.transaction().await.unwrap();
        let r = tx
            .execute(
                r#"INSERT INTO "tblControlNumber" ("ControlNumberID", "ControlNumber", "ValidityFrom")
                   SELECT COALESCE(max("ControlNumberID"), 0) + 1, 'SQL' || $1::text, now()
                   FROM "tblControlNumber""#,
                &[&i.to_string()],
            )
            .await;
        // Its own duplicate keys are its business: the table lock makes it wait, not us.
        if r.is_ok() {
            tx.batch_execute("SELECT pg_sleep(0.02)").await.unwrap();
            tx.commit().await.unwrap();
            ok += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ok
}

/// tblControlNumber's key has no default and no sequence in the real scripts. Two gateways
/// (two stores) mirror control numbers into one database at once, in small interleaved
/// batches, while a plain SQL client inserts rows of its own: every write arrives, none is
/// dead-lettered for a duplicate key, and the updates' history rows get keys of their own
/// the same way (ValidityTo set, LegacyID = the current row's id).
#[test]
fn two_writers_and_a_plain_sql_client_insert_control_numbers_at_once_without_duplicate_keys() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const N: usize = 40;
    let (pg, a) = seeded();
    let b = Store::open_temporary().unwrap();
    let ids_a = pool_numbers(&a, "99A", N);
    let ids_b = pool_numbers(&b, "99B", N);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (wa, wb) = (small_batch_writer(&a, &pg), small_batch_writer(&b, &pg));
    let round = |rt: &tokio::runtime::Runtime| {
        let stop = Arc::new(AtomicBool::new(false));
        let sql = rt.spawn(plain_sql_inserter(pg.dsn(), stop.clone()));
        rt.block_on(async {
            tokio::join!(drain(&wa, &a), drain(&wb, &b));
        });
        stop.store(true, Ordering::Relaxed);
        rt.block_on(sql).unwrap()
    };
    let inserted = round(&rt);
    for s in [&a, &b] {
        let dead = s.dead(MIRROR_TOPIC).unwrap();
        let reasons: Vec<&str> = dead.iter().map(|d| d.last_error.as_str()).collect();
        assert!(dead.is_empty(), "{reasons:#?}");
    }
    assert!(inserted > 0, "the plain SQL client inserted nothing");
    assert_eq!(
        pg.query(
            r#"SELECT count(*) FILTER (WHERE "ControlNumber" LIKE '99%'),
                      count(*) FILTER (WHERE "ControlNumber" LIKE 'SQL%'),
                      count(DISTINCT "ControlNumberID") = count(*)
               FROM "tblControlNumber""#
        ),
        format!("{}|{inserted}|t", 2 * N)
    );
    // One row column by column: pooled (1), no payment, the system user, current.
    assert_eq!(
        pg.query(
            r#"SELECT "Status", "PaymentID" IS NULL, "AuditedUserID", "ValidityTo" IS NULL,
                      "LegacyID" IS NULL, "RequestedDate" IS NOT NULL
               FROM "tblControlNumber" WHERE "ControlNumber" = '99A0000'"#
        ),
        "1|t|-1|t|t|t"
    );

    // Every number assigned, in both stores at once: 2N updates, 2N history rows.
    assign_all(&a, &ids_a);
    assign_all(&b, &ids_b);
    let more = round(&rt);
    for s in [&a, &b] {
        assert!(s.dead(MIRROR_TOPIC).unwrap().is_empty());
    }
    assert_eq!(
        pg.query(
            r#"SELECT count(*) FILTER (WHERE c."ValidityTo" IS NULL AND c."Status" = 2),
                      count(h.*), bool_and(h."Status" = 1), bool_and(h."ValidityTo" = c."ValidityFrom"),
                      bool_and(h."ControlNumber" = c."ControlNumber")
               FROM "tblControlNumber" c
               LEFT JOIN "tblControlNumber" h ON h."LegacyID" = c."ControlNumberID"
               WHERE c."ControlNumber" LIKE '99%' AND c."ValidityTo" IS NULL"#
        ),
        format!("{}|{}|t|t|t", 2 * N, 2 * N)
    );
    assert_eq!(
        pg.query(
            r#"SELECT count(*) FILTER (WHERE "ControlNumber" LIKE 'SQL%'),
                      count(DISTINCT "ControlNumberID") = count(*)
               FROM "tblControlNumber""#
        ),
        format!("{}|t", inserted + more)
    );
}

/// A database lacking a column the gateway needs is refused when the writer starts: one
/// log line and the `/health` mirror entry name the table and column, and nothing is written
/// (the writes wait in the outbox).
#[test]
fn a_database_lacking_a_needed_column_is_refused_at_start_and_health_says_why() {
    let pg = Pg::start();
    pg.query(r#"ALTER TABLE "tblFamilySMS" DROP COLUMN languageofsms"#);
    let dir = tempfile::tempdir().unwrap();
    let server = mirrored_server(&pg, dir.path(), &[]);
    let u = common::ussd::Ussd::new(&server);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let h = loop {
        let h = mirror_health(&u);
        if h["state"] == "refused" {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "not refused: {h}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(h["reason"], "tblFamilySMS.LanguageOfSMS missing", "{h}");
    // The gateway still serves; its writes are kept, not written.
    renew_by_ussd(&u);
    std::thread::sleep(Duration::from_millis(1500));
    let h = mirror_health(&u);
    assert_eq!(h["state"], "refused", "{h}");
    assert_eq!(h["applied_total"], 0, "{h}");
    assert_eq!(h["rejected_total"], 0, "{h}");
    assert!(h["lag_secs"].as_f64().unwrap_or(0.0) > 0.0, "{h}");
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblPolicy""#), "0");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let refusals: Vec<&String> = logs.iter().filter(|l| l.contains("refused")).collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(
        refusals[0].contains("tblFamilySMS.LanguageOfSMS missing"),
        "{refusals:#?}"
    );
}

/// An enrolment mirrored, then its policy suspended (2 → 4) and mirrored again, with no
/// dead letter; the runtime used and the policy's UUID.
fn enrol_then_suspend(pg: &Pg, store: &Store) -> (tokio::runtime::Runtime, Uuid) {
    let e = enrol(store, 1, "Hamisi");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(drain(&writer(store, pg), store));
    set_status(store, e.policy, PolicyStatus::Suspended);
    rt.block_on(drain(&writer(store, pg), store));
    assert!(store.dead(MIRROR_TOPIC).unwrap().is_empty());
    (rt, store.policy(e.policy).unwrap().unwrap().uuid)
}

/// `cols` of the current tblPolicy row `u` (as `c`) joined with its history rows (`h`).
fn with_history(pg: &Pg, u: Uuid, cols: &str) -> String {
    pg.query(&format!(
        r#"SELECT {cols} FROM "tblPolicy" c JOIN "tblPolicy" h ON h."LegacyID" = c."PolicyID"
           WHERE c."PolicyUUID" = '{u}' AND c."ValidityTo" IS NULL"#
    ))
}

/// Columns a history copy carries but the gateway does not map are optional: a database
/// without them (as the backend's migrations leave tblPremium without RowID) is written
/// all the same, the copy leaving them out.
#[test]
fn an_unmapped_column_the_database_lacks_is_not_copied_and_nothing_is_dead() {
    let (pg, store) = seeded();
    pg.query(r#"ALTER TABLE "tblPolicy" DROP COLUMN "Source", DROP COLUMN "SourceVersion""#);
    pg.query(r#"ALTER TABLE "tblPremium" DROP COLUMN "RowID""#);
    let (rt, u) = enrol_then_suspend(&pg, &store);
    let cols = r#"c."PolicyStatus", h."PolicyStatus", h."LegacyID" = c."PolicyID",
                  h."ValidityTo" = c."ValidityFrom""#;
    assert_eq!(with_history(&pg, u, cols), "4|2|t|t");
    assert_consistent(&rt, &pg, &store);
}

/// A key that is an identity column (as newer Django migrations create them), even
/// GENERATED ALWAYS, is drawn from its own sequence as the catalogue names it and supplied
/// with OVERRIDING SYSTEM VALUE, for the new row and for the history row alike.
#[test]
fn a_key_generated_always_as_identity_is_drawn_from_its_sequence() {
    let (pg, store) = seeded();
    pg.query(
        r#"ALTER TABLE "tblPolicy" ALTER COLUMN "PolicyID" DROP DEFAULT;
           DROP SEQUENCE "tblPolicy_PolicyID_seq";
           ALTER TABLE "tblPolicy" ALTER COLUMN "PolicyID"
             ADD GENERATED ALWAYS AS IDENTITY (START WITH 500)"#,
    );
    let (rt, u) = enrol_then_suspend(&pg, &store);
    let cols = r#"c."PolicyID", c."PolicyStatus", h."PolicyID", h."PolicyStatus",
                  h."LegacyID" = c."PolicyID""#;
    assert_eq!(with_history(&pg, u, cols), "500|4|501|2|t");
    assert_consistent(&rt, &pg, &store);
}
