//! The REAL openIMIS database as a running openIMIS has it: upstream's scripts, then the real
//! backend's `manage.py migrate` (tests/openimis-be/setup.sh; the venv and a dump of the
//! migrated database are cached under target/, so only the first run pays for pip and the
//! migrations). Checked through the gateway's own catalogue reader
//! (`imis_gateway::mirror::catalogue`), beside the scripts variant, so the reader is shown
//! to see both as they are; and the import reads both alike.
//!
//! Each test starts its own cluster; PostgreSQL, python3 or venv missing is a failure that
//! names what to install, never a skip.

mod common;

use common::openimis_db::{check_descriptions, Data, DescriptionCheck, OpenImisPg, Variant};
use imis_gateway::mirror::catalogue::{
    read_table, sequence_in_default, CatalogueError, IdSource, TableCatalogue,
};

/// Both variants with the demo data in one cluster (`scripts`, `migrated`), and a runtime to
/// read them on (keep the cluster: dropping it stops the server).
fn both_variants() -> (OpenImisPg, tokio::runtime::Runtime) {
    let cluster = OpenImisPg::start();
    cluster.create_variant("scripts", Variant::Scripts, Data::Demo);
    cluster.create_variant("migrated", Variant::Migrated, Data::Demo);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    (cluster, rt)
}

fn client(cluster: &OpenImisPg, rt: &tokio::runtime::Runtime, db: &str) -> tokio_postgres::Client {
    rt.block_on(imis_gateway::mirror::connect(&cluster.pg.dsn_of(db)))
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
}

fn count(cluster: &OpenImisPg, db: &str, sql: &str) -> i64 {
    let n = cluster.pg.query_in(db, sql);
    n.parse()
        .unwrap_or_else(|e| panic!("{db}: {sql}: {n:?}: {e}"))
}

#[test]
fn the_migrated_variant_loads_with_the_same_demo_data() {
    let (cluster, _rt) = both_variants();
    let tables = "SELECT count(*) FROM information_schema.tables \
                  WHERE table_schema = 'public' AND table_type = 'BASE TABLE'";
    // The backend's migrations add the modular openIMIS's own tables (Django's, history
    // tables, contribution plans, invoices, ...) to the legacy ones.
    assert_eq!(count(&cluster, "scripts", tables), 65);
    assert_eq!(count(&cluster, "migrated", tables), 172);
    for app in [
        "core",
        "insuree",
        "policy",
        "contribution",
        "payment",
        "location",
    ] {
        let n = count(
            &cluster,
            "migrated",
            &format!("SELECT count(*) FROM django_migrations WHERE app = '{app}'"),
        );
        assert!(n > 0, "no {app} migration recorded");
    }

    // The migrations keep the demo rows, current and history alike.
    for db in ["scripts", "migrated"] {
        let rows = |table: &str, cond: &str| {
            count(
                &cluster,
                db,
                &format!("SELECT count(*) FROM \"{table}\"{cond}"),
            )
        };
        let current = " WHERE \"ValidityTo\" IS NULL";
        assert_eq!(
            [
                rows("tblFamilies", current),
                rows("tblInsuree", current),
                rows("tblPolicy", current)
            ],
            [21, 60, 21],
            "{db}: current rows"
        );
        assert_eq!(
            [
                rows("tblFamilies", ""),
                rows("tblInsuree", ""),
                rows("tblPolicy", "")
            ],
            [30, 144, 79],
            "{db}: with the history rows"
        );
    }
}

#[test]
fn the_catalogue_reader_sees_what_the_migrations_changed() {
    let (cluster, rt) = both_variants();
    let scripts = client(&cluster, &rt, "scripts");
    let migrated = client(&cluster, &rt, "migrated");
    let read = |c: &tokio_postgres::Client, table: &str| -> TableCatalogue {
        rt.block_on(read_table(c, table))
            .unwrap_or_else(|e| panic!("{table}: {e}"))
    };

    // tblPremium loses RowID and gains the commission columns.
    let (before, after) = (read(&scripts, "tblPremium"), read(&migrated, "tblPremium"));
    assert!(before.column("RowID").is_ok());
    let e = after.column("RowID").unwrap_err();
    assert!(
        matches!(&e, CatalogueError::NoColumn { table, column }
        if table == "tblPremium" && column == "RowID"),
        "{e:?}"
    );
    for added in [
        "AllDetailsCommissionReport",
        "OverviewCommissionReport",
        "ReportingCommissionID",
    ] {
        assert!(before.column(added).is_err(), "{added} before migrate");
        let c = after.column(added).expect(added);
        assert!(c.nullable, "{added} is nullable: old writers leave it out");
    }
    // Its key is still the scripts' serial.
    assert_eq!(
        after.column("PremiumId").unwrap().id_source(),
        IdSource::Sequence("public.\"tblPremium_PremiumId_seq\"".into())
    );

    // tblPayment's and tblPaymentDetails' keys now default from NEW sequences (lower case,
    // made by the migrations), while the columns still own the scripts' serial sequences,
    // which nothing draws from any more.
    for (table, key, old, new) in [
        (
            "tblPayment",
            "PaymentID",
            "tblPayment_PaymentID_seq",
            "tblpayment_paymentid_seq",
        ),
        (
            "tblPaymentDetails",
            "PaymentDetailsID",
            "tblPaymentDetails_PaymentDetailsID_seq",
            "tblpaymentdetails_paymentdetailsid_seq",
        ),
    ] {
        let before = read(&scripts, table);
        let before = before.column(key).unwrap();
        assert_eq!(
            before.fill.default.as_deref(),
            Some(format!("nextval('\"{old}\"'::regclass)").as_str()),
            "{table} scripts"
        );
        let after = read(&migrated, table);
        let after = after.column(key).unwrap();
        let default = after.fill.default.as_deref().expect("a default");
        assert_eq!(default, format!("nextval('{new}'::regclass)"), "{table}");
        assert_eq!(sequence_in_default(default).as_deref(), Some(new));
        assert_eq!(
            after.fill.owned_sequence.as_deref(),
            Some(format!("public.\"{old}\"").as_str()),
            "{table}: the owned sequence is still the scripts' one"
        );
        assert_eq!(
            (
                after.fill.identity,
                after.nullable,
                after.ty.udt_name.as_str()
            ),
            (None, false, "int8"),
            "{table}"
        );
    }

    // tblInsuree: FamilyID, DOB and CardIssued become NULLable; JsonExt and the status
    // columns appear.
    let (before, after) = (read(&scripts, "tblInsuree"), read(&migrated, "tblInsuree"));
    for name in ["FamilyID", "DOB", "CardIssued"] {
        assert!(!before.column(name).unwrap().nullable, "{name} before");
        assert!(after.column(name).unwrap().nullable, "{name} after");
    }
    for name in ["JsonExt", "status", "status_date", "StatusReason"] {
        assert!(before.column(name).is_err(), "{name} before");
        assert!(after.column(name).is_ok(), "{name} after");
    }
    assert_eq!(after.column("JsonExt").unwrap().ty.udt_name, "jsonb");
    for table in ["tblFamilies", "tblOfficer", "tblLocations", "tblHF"] {
        assert!(read(&migrated, table).column("JsonExt").is_ok(), "{table}");
    }
    let policy = read(&migrated, "tblPolicy");
    assert!(policy.column("ContributionPlanID").is_ok());
    assert!(policy.column("creationDate").is_ok());

    // tblControlNumber's key is untouched: bigint, no default, no sequence, in both.
    for c in [&scripts, &migrated] {
        let cn = read(c, "tblControlNumber");
        let id = cn.column("ControlNumberID").unwrap();
        assert_eq!((id.ty.udt_name.as_str(), id.nullable), ("int8", false));
        assert_eq!(id.id_source(), IdSource::None);
        assert!(id.needs_allocated_id());
    }

    // tblUsers is rebuilt: UserID becomes id (same sequence), UserUUID becomes UUID.
    let (before, after) = (read(&scripts, "tblUsers"), read(&migrated, "tblUsers"));
    assert!(before.column("UserID").is_ok() && before.column("UserUUID").is_ok());
    assert!(after.column("UserUUID").is_err());
    // "UserID" and "id" differ in more than case: no column answers to the old name.
    assert!(after.column("UserID").is_err());
    assert_eq!(after.spelling("UUID").unwrap(), "UUID");
    assert_eq!(
        after.column("id").unwrap().fill.default.as_deref(),
        Some("nextval('\"tblUsers_UserID_seq\"'::regclass)")
    );

    // tblFamilySMS keeps its unquoted lower-case columns.
    let sms = read(&migrated, "tblFamilySMS");
    assert_eq!(sms.spelling("ApprovalOfSMS").unwrap(), "approvalofsms");
}

/// Where a migrated payment key's values really come from: the sequence its default draws
/// from, not the column's owned sequence, which after the migrations is the scripts' old one
/// that the default no longer uses: ids drawn from it would collide with the backend's own
/// inserts.
#[test]
fn a_migrated_payment_key_draws_from_the_sequence_of_its_default() {
    let (cluster, rt) = both_variants();
    let migrated = client(&cluster, &rt, "migrated");
    for (table, key, seq) in [
        ("tblPayment", "PaymentID", "tblpayment_paymentid_seq"),
        (
            "tblPaymentDetails",
            "PaymentDetailsID",
            "tblpaymentdetails_paymentdetailsid_seq",
        ),
    ] {
        let cat = rt.block_on(read_table(&migrated, table)).expect(table);
        match cat.column(key).unwrap().id_source() {
            IdSource::Sequence(s) if s.trim_start_matches("public.") == seq => {}
            other => panic!("{table}.{key}: {other:?}, its default draws from {seq}"),
        }
    }
}

/// `imis-gateway import --from` a database: the per-table counts it prints.
fn import(dsn: &str) -> Result<Vec<(String, i64)>, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("store");
    let data_dir = data_dir.to_str().expect("utf-8 path");
    let out = common::run(
        &["import", "--from", dsn, "--data-dir", data_dir],
        &[("RUST_BACKTRACE", "0")],
    );
    if !out.status.success() {
        return Err(format!(
            "import --from {dsn} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout
        .lines()
        .filter(|l| !l.starts_with("imported "))
        .filter_map(|l| {
            let (table, n) = l.split_once(": ")?;
            Some((table.to_string(), n.trim().parse().ok()?))
        })
        .collect())
}

#[test]
fn import_reads_the_migrated_demo_database_as_it_reads_the_scripts_one() {
    let (cluster, rt) = both_variants();
    let mut imported = Vec::new();
    for db in ["scripts", "migrated"] {
        let counts = import(&cluster.pg.dsn_of(db)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!counts.is_empty(), "{db}: import printed no table");
        let c = client(&cluster, &rt, db);
        for (table, n) in &counts {
            // tblFamilySMS spells it validityto: ask the catalogue.
            let cat = rt
                .block_on(read_table(&c, table))
                .unwrap_or_else(|e| panic!("{table}: {e}"));
            let validity_to = cat.spelling("ValidityTo").expect("ValidityTo");
            let current = count(
                &cluster,
                db,
                &format!("SELECT count(*) FROM \"{table}\" WHERE \"{validity_to}\" IS NULL"),
            );
            assert_eq!(*n, current, "{db}: {table}: imported vs current rows");
        }
        imported.push(counts);
    }
    assert_eq!(imported[0], imported[1], "scripts vs migrated");
}

/// Without python3 the setup fails at once and names what to install (the harness panics
/// with these words): the migrated variant is never skipped silently.
#[test]
fn setup_without_python3_fails_naming_what_to_install() {
    // A PATH holding every tool of /usr/bin and /bin but python.
    let bin = tempfile::tempdir().expect("temp dir");
    for dir in ["/usr/bin", "/bin"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let link = bin.path().join(&name);
            if name.to_string_lossy().starts_with("python") || link.exists() {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), link).expect("symlink");
        }
    }
    let cache = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new("/bin/bash")
        .arg(common::openimis_db::setup_script())
        .arg("venv")
        .env("PATH", bin.path())
        .env("OPENIMIS_BE_CACHE", cache.path())
        .output()
        .expect("run setup.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("python3 not found")
            && stderr.contains("apt-get install -y python3 python3-venv"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(cache.path()).expect("cache").count(),
        0,
        "nothing built"
    );
}

/// The mirror's table descriptions against the migrated catalogue: what the writer and the
/// pull would meet on a database the real backend has migrated.
#[test]
fn the_mirror_descriptions_against_the_migrated_catalogue() {
    let cluster = OpenImisPg::start();
    cluster.create_variant("migrated", Variant::Migrated, Data::Demo);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let c = client(&cluster, &rt, "migrated");
    let DescriptionCheck {
        mismatches,
        allocated,
    } = rt.block_on(check_descriptions(&c));
    assert_eq!(allocated, ["tblControlNumber"]);
    // Every mapped column is there as the mirror spells and types it; the one difference is
    // where tblPayment's keys come from: the backend's default draws from a new sequence,
    // not the description's (still owned) one. The catalogue reports the default's, which
    // the writer's live schema draws from, so its ids never collide with the backend's.
    assert_eq!(
        mismatches,
        [
            "tblPayment.PaymentID: Sequence(\"tblpayment_paymentid_seq\")",
            "tblPayment.PaymentID: the default calls nextval of tblpayment_paymentid_seq, \
             not tblPayment_PaymentID_seq"
        ]
    );
}
