//! The mirror against a real PostgreSQL with the openIMIS subset schema (tests/pg/).
//!
//! Each test starts its own cluster (tests/common/pg.rs); PostgreSQL missing is a failure.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use chrono::NaiveDate;
use common::pg::Pg;
use imis_gateway::domain::*;
use imis_gateway::mirror::writer::{apply_batch, Outcome};
use imis_gateway::mirror::{pull, MirrorWriter, WriterOptions};
use imis_gateway::store::{Store, TxResult, MIRROR_TOPIC};
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
    let pg = Pg::start();
    for stmt in SEED.split(";\n").filter(|s| !s.trim().is_empty()) {
        pg.query(stmt);
    }
    let store = Store::open_temporary().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        let counts = pull::import(&c, &store, |_, _| {}).await.unwrap();
        assert!(
            counts.contains(&("tblLocations", 3)),
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
    let r: TxResult<()> = (|| Ok(()))();
    r.unwrap();
    let w: Result<(), _> = store.write(|tx| -> TxResult<(), Infallible> {
        tx.put_family(&Family {
            id: fam,
            uuid: Uuid::new_v4(),
            head,
            village,
            poverty: false,
            sms: SmsPreference {
                approved: true,
                language: Language::Sw,
            },
        })?;
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

fn writer(store: &Store, pg: &Pg) -> MirrorWriter {
    let opts = WriterOptions {
        lease: Duration::from_secs(2),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        ..WriterOptions::default()
    };
    MirrorWriter::new(store.clone(), pg.dsn(), opts)
}

/// Steps the writer until the topic is empty; returns how many steps failed.
async fn drain(w: &MirrorWriter, store: &Store) -> usize {
    let mut client = None;
    let mut held = Vec::new();
    let mut failures = 0;
    for _ in 0..2000 {
        match w.step(&mut client, &mut held).await {
            Ok(0) if held.is_empty() && store.pending_count(MIRROR_TOPIC).unwrap() == 0 => {
                return failures
            }
            Ok(_) => {}
            Err(_) => {
                failures += 1;
                client = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("mirror did not drain");
}

#[test]
fn enrolment_and_policy_update_produce_rows_history_rows_and_no_duplicates_on_replay() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = enrol(&store, 1, "Hamisi");
    let w = writer(&store, &pg);
    rt.block_on(drain(&w, &store));

    let fam = store.family(e.family).unwrap().unwrap();
    let row = pg.query(&format!(
        r#"SELECT f."LocationId" = l."LocationId", f."AuditUserID", i."CHFID", i."IsHead", f."ValidityTo" IS NULL
           FROM "tblFamilies" f JOIN "tblInsuree" i ON i."InsureeID" = f."InsureeID"
           JOIN "tblLocations" l ON l."LocationCode" = 'V0111' AND l."ValidityTo" IS NULL
           WHERE f."FamilyUUID" = '{}'"#,
        fam.uuid
    ));
    assert_eq!(
        row,
        "t|-3|100000024|t|t".replace(
            "100000024",
            &Chfid::from_base(1_000_002).unwrap().to_string()
        )
    );
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblInsuree" WHERE "ValidityTo" IS NULL"#),
        "2"
    );
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblInsuree" i JOIN "tblFamilies" f USING ("FamilyID")"#),
        "2"
    );
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblInsureePolicy""#), "2");
    assert_eq!(
        pg.query(r#"SELECT "ApprovalOfSMS", "LanguageOfSMS" FROM "tblFamilySMS""#),
        "t|sw"
    );
    let pol = store.policy(e.policy).unwrap().unwrap();
    let q_policy = format!(
        r#"SELECT "PolicyStatus", "PolicyValue", "PolicyStage", "EffectiveDate", "ExpiryDate", "AuditUserID"
           FROM "tblPolicy" WHERE "PolicyUUID" = '{}'"#,
        pol.uuid
    );
    assert_eq!(pg.query(&q_policy), "2|30000.00|N|2024-01-10|2025-01-09|-3");
    assert_eq!(
        pg.query(r#"SELECT "Amount", "Receipt", "PayType", p."PolicyStatus" FROM "tblPremium" JOIN "tblPolicy" p USING ("PolicyID")"#),
        "30000.00|RCPT1|M|2"
    );

    // A suspension: a history row with the old state, the current row updated in place.
    set_status(&store, e.policy, PolicyStatus::Suspended);
    rt.block_on(drain(&w, &store));
    assert_eq!(pg.query(&q_policy), "4|30000.00|N|2024-01-10|2025-01-09|-3");
    let hist = pg.query(
        r#"SELECT h."PolicyStatus", h."LegacyID" = c."PolicyID", h."PolicyUUID" <> c."PolicyUUID",
                  h."ValidityTo" IS NOT NULL, c."ValidityFrom" >= h."ValidityTo" - interval '1 second'
           FROM "tblPolicy" h JOIN "tblPolicy" c ON c."ValidityTo" IS NULL WHERE h."ValidityTo" IS NOT NULL"#,
    );
    assert_eq!(hist, "2|t|t|t|t");

    // A batch replayed after its commit (crash before the ack) writes nothing twice.
    set_status(&store, e.policy, PolicyStatus::Active);
    let items = store
        .claim(
            MIRROR_TOPIC,
            100,
            Duration::from_secs(30),
            chrono::Utc::now(),
        )
        .unwrap();
    assert_eq!(items.len(), 1);
    rt.block_on(async {
        let mut c = imis_gateway::mirror::connect(&pg.dsn()).await.unwrap();
        for _ in 0..2 {
            let out = apply_batch(&mut c, &store, &items, -3).await.unwrap();
            assert_eq!(out, vec![Outcome::Applied]);
        }
    });
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblPolicy""#),
        "3",
        "one current + two history rows"
    );
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblFamilies""#), "1");
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblInsuree""#), "2");
}

#[test]
fn a_rejected_row_goes_to_the_dead_letters_with_its_reason_and_does_not_block_others() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // tblInsuree.LastName is varchar(100): the database refuses the child.
    let bad = enrol(&store, 1, &"X".repeat(150));
    let good = enrol(&store, 2, "Hamisi");
    rt.block_on(drain(&writer(&store, &pg), &store));
    let dead = store.dead(MIRROR_TOPIC).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].key.starts_with("insuree:"), "{}", dead[0].key);
    assert!(
        dead[0].last_error.starts_with("22001"),
        "{}",
        dead[0].last_error
    );
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
}

#[test]
fn a_backlog_written_while_the_database_is_down_arrives_in_order_without_loss_or_duplicates() {
    let (pg, store) = seeded();
    let rt = tokio::runtime::Runtime::new().unwrap();
    pg.stop();
    let mut policies = Vec::new();
    for n in 0..100 {
        let e = enrol(&store, n, "Hamisi");
        set_status(&store, e.policy, PolicyStatus::Suspended);
        set_status(&store, e.policy, PolicyStatus::Active);
        policies.push(e.policy);
    }
    let pending = store.pending_count(MIRROR_TOPIC).unwrap();
    assert_eq!(pending, 100 * 9);
    let w = writer(&store, &pg);
    let failures = rt.block_on(async {
        let mut client = None;
        let mut held = Vec::new();
        let mut failures = 0;
        for _ in 0..3 {
            if w.step(&mut client, &mut held).await.is_err() {
                failures += 1;
            }
        }
        failures
    });
    assert_eq!(failures, 3, "the database is down");
    assert_eq!(
        store.dead(MIRROR_TOPIC).unwrap().len(),
        0,
        "an outage is not a rejection"
    );
    pg.start_server();
    rt.block_on(drain(&w, &store));
    assert_eq!(pg.query(r#"SELECT count(*) FROM "tblFamilies""#), "100");
    assert_eq!(
        pg.query(
            r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NULL AND "PolicyStatus" = 2"#
        ),
        "100"
    );
    // Two history rows per policy, in write order: first Active (2), then Suspended (4).
    assert_eq!(
        pg.query(r#"SELECT count(*) FROM "tblPolicy" WHERE "ValidityTo" IS NOT NULL"#),
        "200"
    );
    let order = pg.query(
        r#"SELECT count(*) FROM "tblPolicy" a JOIN "tblPolicy" b ON a."LegacyID" = b."LegacyID"
           WHERE a."PolicyStatus" = 2 AND b."PolicyStatus" = 4 AND a."PolicyID" < b."PolicyID""#,
    );
    assert_eq!(order, "100");
    assert_eq!(
        pg.query(r#"SELECT count(DISTINCT "PolicyUUID") FROM "tblPolicy""#),
        "300"
    );
    assert_eq!(store.dead(MIRROR_TOPIC).unwrap().len(), 0);
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
