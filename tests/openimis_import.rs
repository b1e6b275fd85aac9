//! Import, pull and `mirror verify` against the REAL openIMIS demo database (upstream's
//! scripts and demo data, tests/third_party/openimis-db/, loaded unmodified).
//! Insurance numbers are kept as the central database has them (46 of the 60 fail our
//! check digit, 4 have 8 digits): nothing is rewritten before importing.

mod common;

use std::path::Path;

use common::openimis_db::{Data, OpenImisPg};
use imis_gateway::domain::ChfidRule;
use imis_gateway::domain::{Money, Payment, PaymentDetail, PaymentStatus, PolicyStage};
use imis_gateway::mirror::import::{into_dir, ImportError};
use imis_gateway::mirror::verify::verify;
use imis_gateway::mirror::{idmap, pull, MirrorError};
use imis_gateway::store::{Store, StoreOptions};

/// Every table the import reads, with the rows it must load: the current ones (the pull
/// reads open payments only, with their control numbers).
const TABLES: [(&str, &str); 9] = [
    ("tblLocations", ""),
    ("tblProduct", ""),
    ("tblOfficer", ""),
    ("tblFamilies", ""),
    ("tblInsuree", ""),
    ("tblPolicy", ""),
    ("tblInsureePolicy", ""),
    ("tblPremium", ""),
    ("tblPayment", " AND \"PaymentStatus\" BETWEEN 0 AND 4"),
];

/// A client of `dsn` on a runtime of its own.
fn connect(dsn: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = rt
        .block_on(imis_gateway::mirror::connect(dsn))
        .expect("connect");
    (rt, client)
}

/// A fresh cluster with database `db` holding the demo and a client
/// of it on a runtime of its own (keep the cluster: dropping it stops the server).
fn demo(db: &str) -> (OpenImisPg, tokio::runtime::Runtime, tokio_postgres::Client) {
    let cluster = OpenImisPg::start();
    let dsn = cluster.create(db, Data::Demo);
    let (rt, client) = connect(&dsn);
    (cluster, rt, client)
}

fn current_count(cluster: &OpenImisPg, db: &str, table: &str, filter: &str) -> u64 {
    let n = cluster.pg.query_in(
        db,
        &format!("SELECT count(*) FROM \"{table}\" WHERE \"ValidityTo\" IS NULL{filter}"),
    );
    n.parse()
        .unwrap_or_else(|e| panic!("count of {table}: {n:?}: {e}"))
}

/// `into_dir` with the default store options and CHFID rule; panics on a failed import.
fn import_default(
    rt: &tokio::runtime::Runtime,
    client: &tokio_postgres::Client,
    dir: &Path,
) -> imis_gateway::mirror::import::Imported {
    rt.block_on(into_dir(
        client,
        dir,
        StoreOptions::default(),
        ChfidRule::default(),
        |_, _| {},
    ))
    .expect("import")
}

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).expect("open store")
}

/// The demo with an SMS preference in the real, lower-case
/// `tblFamilySMS`; imported through the CLI; checked table by table; then `verify`.
#[test]
fn the_real_demo_imports_completely_and_verify_then_finds_nothing() {
    let cluster = OpenImisPg::start();
    let dsn = cluster.create("demo", Data::Demo);
    cluster.pg.query_in(
        "demo",
        "INSERT INTO \"tblFamilySMS\" (familyid, approvalofsms, languageofsms, validityfrom) \
         VALUES (1, true, 'en', now())",
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let dir_s = dir.to_str().expect("utf-8 path");
    let out = common::run(&["import", "--from", &dsn, "--data-dir", dir_s], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (table, filter) in TABLES {
        let want = current_count(&cluster, "demo", table, filter);
        assert!(
            stdout.lines().any(|l| l == format!("{table}: {want}")),
            "{table}: want {want}\n{stdout}"
        );
    }
    assert!(
        // 46 of the 60 real CHFIDs fail Tanzania's rule (4 have 8 digits): kept, counted.
        stdout.contains("kept, would be refused if typed: CHFID: 46"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kept, would be refused if typed: phone: 0"),
        "{stdout}"
    );
    assert!(!dir.with_file_name("store.importing").exists());

    let store = open(&dir);
    let c = store.counts().expect("counts");
    assert_eq!(
        c.insurees as u64,
        current_count(&cluster, "demo", "tblInsuree", "")
    );
    assert_eq!(
        c.families as u64,
        current_count(&cluster, "demo", "tblFamilies", "")
    );
    // The family's SMS preference was read from the lower-case columns.
    let fam1 = idmap::local(&store, "family", 1)
        .expect("map")
        .expect("family 1");
    let sms = store.family(fam1).expect("read").expect("family").sms;
    assert!(sms.approved, "{sms:?}");

    let (rt, client) = connect(&dsn);
    let report = rt.block_on(verify(&client, &store)).expect("verify");
    let lines: Vec<String> = report.differences.iter().map(|d| d.to_string()).collect();
    assert!(lines.is_empty(), "{}", lines.join("\n"));
    assert!(report.checked > 200, "{report:?}");

    // A real central change is listed, and only it.
    cluster.pg.query_in(
        "demo",
        "UPDATE \"tblInsuree\" SET \"LastName\" = 'Changed' \
         WHERE \"InsureeID\" = 2 AND \"ValidityTo\" IS NULL",
    );
    cluster.pg.query_in(
        "demo",
        "UPDATE \"tblFamilies\" SET \"Poverty\" = true WHERE \"FamilyID\" = 2",
    );
    let report = rt.block_on(verify(&client, &store)).expect("verify");
    let lines: Vec<String> = report.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(lines.len(), 2, "{}", lines.join("\n"));
    assert!(
        lines.iter().any(
            |l| l.contains("(tblInsuree 2): LastName store=\"Macintyre\" central=\"Changed\";")
        ),
        "{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("(tblFamilies 2): Poverty store=false central=true;")),
        "{}",
        lines.join("\n")
    );
}

/// The unmodified demo: every insuree is loaded though most CHFIDs fail our check digit
/// (and four have 8 digits); they are counted, not refused.
#[test]
fn the_unmodified_demo_imports_every_insuree_and_counts_the_chfids_we_would_refuse() {
    let cluster = OpenImisPg::start();
    let dsn = cluster.create("demo", Data::Demo);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let (rt, client) = connect(&dsn);
    let imported = import_default(&rt, &client, &dir);
    let insurees = imported
        .counts
        .iter()
        .find(|(t, _)| *t == "tblInsuree")
        .map(|(_, n)| *n);
    assert_eq!(insurees, Some(60));
    assert_eq!(imported.flagged.chfid, 46, "{imported:?}");
    let store = open(&dir);
    let report = rt.block_on(verify(&client, &store)).expect("verify");
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

/// An import that fails mid-way (a central row that cannot be decoded, after three tables
/// are loaded) leaves the data directory as it was, whether absent or an empty store; a
/// rerun after the row is fixed succeeds; a store that holds records is refused untouched.
#[test]
fn a_failed_import_leaves_the_data_directory_as_it_was_and_a_rerun_succeeds() {
    let (cluster, rt, client) = demo("broken");
    cluster.pg.query_in(
        "broken",
        "UPDATE \"tblInsuree\" SET \"InsureeUUID\" = 'not-a-uuid' WHERE \"InsureeID\" = 7 AND \"ValidityTo\" IS NULL",
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let run = |dir: &Path| {
        let mut tables = Vec::new();
        let r = rt.block_on(into_dir(
            &client,
            dir,
            StoreOptions::default(),
            ChfidRule::default(),
            |t, _| tables.push(t.to_string()),
        ));
        (r, tables)
    };

    // Absent: still absent, nothing left beside it.
    let absent = tmp.path().join("absent");
    let (r, tables) = run(&absent);
    let e = r.expect_err("a bad UUID fails the import");
    assert!(
        matches!(
            &e,
            ImportError::Mirror(MirrorError::CentralValue {
                table: "tblInsuree",
                ..
            })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("not-a-uuid"), "{e}");
    assert!(
        tables.contains(&"tblFamilies".to_string()),
        "failed mid-import: {tables:?}"
    );
    assert!(!absent.exists());
    assert!(!tmp.path().join("absent.importing").exists());

    // An empty store: still there, still empty, still usable.
    let empty = tmp.path().join("empty");
    drop(open(&empty));
    let (r, _) = run(&empty);
    assert!(r.is_err());
    let store = open(&empty);
    assert_eq!(store.counts().expect("counts").families, 0);
    drop(store);
    assert!(!tmp.path().join("empty.importing").exists());

    // Fixed centrally: the rerun loads everything, into both.
    cluster.pg.query_in(
        "broken",
        "UPDATE \"tblInsuree\" SET \"InsureeUUID\" = gen_random_uuid()::text WHERE \"InsureeID\" = 7",
    );
    for dir in [&absent, &empty] {
        let (r, _) = run(dir);
        let imported = r.expect("rerun");
        let loaded: u64 = imported.counts.iter().map(|(_, n)| n).sum();
        let want: u64 = TABLES
            .iter()
            .map(|(t, f)| current_count(&cluster, "broken", t, f))
            .sum();
        assert_eq!(loaded, want, "{imported:?}");
        let store = open(dir);
        assert_eq!(store.counts().expect("counts").insurees, 60);
    }

    // A directory holding anything but a store is refused and left alone.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "keep me").expect("write");
    let (r, _) = run(&other);
    assert!(matches!(r, Err(ImportError::NotAStore(_))), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).expect("still there"),
        "keep me"
    );

    // A store with records is refused and left alone.
    let (r, _) = run(&absent);
    assert!(
        matches!(r, Err(ImportError::Mirror(MirrorError::NotEmpty))),
        "{r:?}"
    );
    assert_eq!(open(&absent).counts().expect("counts").insurees, 60);
}

/// A payment the gateway wrote and mirrored (its central rows as the writer writes them,
/// mapped in the id map) comes back on the next pull: it is recognised as the store's own
/// and keeps its link to the policy it pays; a later central change to it is applied and
/// the link still kept.
#[test]
fn the_pull_keeps_a_mirrored_payment_linked_to_its_policy() {
    let (cluster, rt, client) = demo("pay");
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    import_default(&rt, &client, &dir);
    let store = open(&dir);

    // Family 1's policy and head, as imported.
    let central_policy: i64 = cluster
        .pg
        .query_in("pay", "SELECT min(\"PolicyID\") FROM \"tblPolicy\" WHERE \"FamilyID\" = 1 AND \"ValidityTo\" IS NULL")
        .parse()
        .expect("policy id");
    let policy = idmap::local(&store, "policy", central_policy)
        .expect("map")
        .expect("imported policy");
    let product_code = cluster.pg.query_in(
        "pay",
        &format!("SELECT p.\"ProductCode\" FROM \"tblProduct\" p JOIN \"tblPolicy\" x ON x.\"ProdID\" = p.\"ProdID\" WHERE x.\"PolicyID\" = {central_policy}"),
    );
    let head = store
        .family_members(
            idmap::local(&store, "family", 1)
                .expect("map")
                .expect("family"),
        )
        .expect("members")
        .into_iter()
        .find(|i| i.is_head)
        .expect("head");

    // The payment as the gateway holds it once mirrored: not pending, mapped.
    let id = store.next_id().expect("id");
    let line = PaymentDetail {
        product_code: product_code.clone(),
        chfid: head.chfid,
        stage: PolicyStage::Renewal,
        policy: Some(policy),
        expected_amount: Money(1_000_000),
        amount: None,
        premium: None,
    };
    let mut payment = Payment::intent(
        id,
        uuid::Uuid::new_v4(),
        line,
        None,
        Default::default(),
        chrono::Utc::now(),
    );
    payment.status = PaymentStatus::Assigned;
    payment.control_number = Some("991100000001".into());
    store
        .write_from_central(
            |tx| -> imis_gateway::store::TxResult<(), std::convert::Infallible> {
                Ok(tx.put_payment(&payment)?)
            },
        )
        .expect("put payment");
    let request = payment.request_date.to_rfc3339();
    let central: i64 = cluster
        .pg
        .query_in(
            "pay",
            &format!(
                "INSERT INTO \"tblPayment\" (\"PaymentUUID\", \"ExpectedAmount\", \"RequestDate\", \
                 \"PaymentStatus\", \"LanguageName\", \"ValidityFrom\", \"AuditedUSerID\") \
                 VALUES ('{}', 10000, '{request}', 3, '{}', now(), -1) RETURNING \"PaymentID\"",
                payment.uuid,
                payment.language.code()
            ),
        )
        .lines()
        .next()
        .unwrap_or_default()
        .parse()
        .expect("payment id");
    cluster.pg.query_in(
        "pay",
        &format!(
            "INSERT INTO \"tblPaymentDetails\" (\"PaymentID\", \"ProductCode\", \"InsuranceNumber\", \
             \"PolicyStage\", \"ExpectedAmount\", \"ValidityFrom\", \"AuditedUserId\") \
             VALUES ({central}, '{product_code}', '{}', 'R', 10000, now(), -1); \
             INSERT INTO \"tblControlNumber\" (\"ControlNumberID\", \"PaymentID\", \"ControlNumber\", \
             \"ValidityFrom\", \"AuditedUserID\") VALUES (1, {central}, '991100000001', now(), -1)",
            head.chfid
        ),
    );
    idmap::put(&store, "payment", id, central).expect("map");

    let report = rt.block_on(pull::pull_once(&client, &store)).expect("pull");
    let after = store.payment(id).expect("read").expect("payment");
    assert_eq!(after, payment, "the pull left our payment as it was");
    assert_eq!(report.applied, 0, "our own payment is not new: {report:?}");

    // Received centrally: applied, the line still pays the policy.
    cluster.pg.query_in(
        "pay",
        &format!("UPDATE \"tblPayment\" SET \"PaymentStatus\" = 4, \"ReceivedAmount\" = 10000 WHERE \"PaymentID\" = {central}"),
    );
    let report = rt.block_on(pull::pull_once(&client, &store)).expect("pull");
    assert_eq!(report.applied, 1, "{report:?}");
    let after = store.payment(id).expect("read").expect("payment");
    assert_eq!(after.status, PaymentStatus::Received);
    assert_eq!(after.received_amount, Some(Money(1_000_000)));
    assert_eq!(after.details[0].policy, Some(policy), "{after:?}");
    assert_eq!(after.control_number.as_deref(), Some("991100000001"));
    assert_eq!(store.payments().expect("payments").len(), 1, "no duplicate");
}

/// A store never imported pulls from the beginning (the watermark floor is a timestamp
/// PostgreSQL accepts), and a pull that fails says what the database said.
#[test]
fn a_pull_without_import_reads_everything_and_errors_carry_the_database_message() {
    let (cluster, rt, client) = demo("fresh");
    let store = Store::open_temporary().expect("store");
    let report = rt
        .block_on(pull::pull_once(&client, &store))
        .expect("first pull");
    let want: u64 = TABLES
        .iter()
        .map(|(t, f)| current_count(&cluster, "fresh", t, f))
        .sum();
    assert_eq!(report.applied as u64, want, "{report:?}");
    let again = rt
        .block_on(pull::pull_once(&client, &store))
        .expect("second pull");
    assert_eq!(again.applied, 0, "{again:?}");

    cluster.pg.query_in(
        "fresh",
        "ALTER TABLE \"tblPolicy\" DROP COLUMN \"PolicyStage\" CASCADE",
    );
    let e = rt
        .block_on(pull::pull_once(&client, &store))
        .expect_err("a missing column fails the pull");
    let msg = e.to_string();
    assert!(
        msg.contains("42703") && msg.contains("PolicyStage"),
        "{msg}"
    );
}
