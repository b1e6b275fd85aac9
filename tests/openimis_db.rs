//! The REAL openIMIS database (upstream's PostgreSQL scripts, tests/third_party/openimis-db/, loaded
//! unmodified in upstream's order) and the mirror's reader of its live catalogue.
//!
//! Each test starts its own cluster (tests/common/pg.rs); PostgreSQL missing is a failure.

mod common;

use common::openimis_db::{
    check_descriptions, Data, DescriptionCheck, OpenImisPg, DEMO_SCRIPT, SCHEMA_SCRIPTS,
};
use imis_gateway::mirror::catalogue::{read_table, CatalogueError, Fill, IdSource};
use imis_gateway::mirror::tables;

/// A fresh cluster with database `name` holding the empty openIMIS schema, and a client of
/// it on a runtime of its own (keep the cluster: dropping it stops the server).
fn schema_db(name: &str) -> (OpenImisPg, tokio::runtime::Runtime, tokio_postgres::Client) {
    let cluster = OpenImisPg::start();
    let dsn = cluster.create(name, Data::Empty);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = rt
        .block_on(imis_gateway::mirror::connect(&dsn))
        .expect("connect");
    (cluster, rt, client)
}

#[test]
fn the_real_scripts_load_without_errors_and_hold_the_demo_data() {
    let cluster = OpenImisPg::start();
    let log = cluster.load_log(Data::Demo);
    let loaded: Vec<&str> = log.iter().map(|(s, _)| *s).collect();
    let mut expected = SCHEMA_SCRIPTS.to_vec();
    expected.push(DEMO_SCRIPT);
    assert_eq!(loaded, expected, "upstream's load order");
    // ON_ERROR_STOP already fails on the first error; psql's stderr must not carry one
    // either (00_dump.sql's one "no transaction in progress" WARNING is upstream's own).
    for (script, stderr) in &log {
        assert!(
            !stderr.contains("ERROR") && !stderr.contains("FATAL"),
            "{script}: {stderr}"
        );
    }

    let db = "demo";
    cluster.create(db, Data::Demo);
    let count = |table: &str, current: bool| -> i64 {
        let cond = if current {
            " WHERE \"ValidityTo\" IS NULL"
        } else {
            ""
        };
        let n = cluster
            .pg
            .query_in(db, &format!("SELECT count(*) FROM \"{table}\"{cond}"));
        n.parse()
            .unwrap_or_else(|e| panic!("count of {table}: {n:?}: {e}"))
    };
    assert_eq!(count("tblFamilies", true), 21);
    assert_eq!(count("tblInsuree", true), 60);
    assert_eq!(count("tblPolicy", true), 21);
    // With the history rows (ValidityTo set, LegacyID = the current row's id).
    assert_eq!(count("tblFamilies", false), 30);
    assert_eq!(count("tblInsuree", false), 144);
    assert_eq!(count("tblPolicy", false), 79);

    // A database made from the empty template holds the schema and no demo rows.
    cluster.create("empty", Data::Empty);
    let families = cluster
        .pg
        .query_in("empty", "SELECT count(*) FROM \"tblFamilies\"");
    assert_eq!(families, "0");
}

#[test]
fn the_catalogue_reads_the_real_tables_as_they_are() {
    let (_cluster, rt, client) = schema_db("catalogue");
    rt.block_on(async {
        // tblFamilySMS was created unquoted: its columns are lower case.
        let sms = read_table(&client, "tblFamilySMS")
            .await
            .expect("tblFamilySMS");
        assert_eq!(sms.schema, "public");
        let names: Vec<&str> = sms.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "familyid",
                "approvalofsms",
                "languageofsms",
                "validityfrom",
                "validityto"
            ]
        );
        assert_eq!(sms.spelling("FamilyID").unwrap(), "familyid");
        assert_eq!(sms.spelling("ApprovalOfSMS").unwrap(), "approvalofsms");
        let lang = sms.column("LanguageOfSMS").unwrap();
        assert_eq!(
            (lang.ty.udt_name.as_str(), lang.ty.max_length, lang.nullable),
            ("varchar", Some(5), true)
        );
        assert!(!sms.column("familyid").unwrap().nullable);

        // tblControlNumber's key: bigint NOT NULL, no default, no sequence (an IDENTITY on
        // SQL Server): the writer must allocate it.
        let cn = read_table(&client, "tblControlNumber")
            .await
            .expect("tblControlNumber");
        let id = cn.column("ControlNumberID").unwrap();
        assert_eq!(cn.columns[0].name, "ControlNumberID");
        assert_eq!(
            (id.ty.data_type.as_str(), id.ty.udt_name.as_str()),
            ("bigint", "int8")
        );
        assert!(!id.nullable);
        assert_eq!(id.fill, Fill::default(), "no default, identity or sequence");
        assert_eq!(id.id_source(), IdSource::None);
        assert!(id.needs_allocated_id());

        // tblPolicy's key is a serial (not an identity): an owned sequence behind a default.
        let policy = read_table(&client, "tblPolicy").await.expect("tblPolicy");
        let id = policy.column("PolicyID").unwrap();
        assert_eq!((id.ty.udt_name.as_str(), id.nullable), ("int4", false));
        assert_eq!(id.fill.identity, None);
        assert_eq!(
            id.fill.default.as_deref(),
            Some("nextval('\"tblPolicy_PolicyID_seq\"'::regclass)")
        );
        assert_eq!(
            id.fill.owned_sequence.as_deref(),
            Some("public.\"tblPolicy_PolicyID_seq\"")
        );
        assert_eq!(
            id.id_source(),
            IdSource::Sequence("public.\"tblPolicy_PolicyID_seq\"".into())
        );
        assert!(!id.needs_allocated_id());
        let value = policy.column("PolicyValue").unwrap();
        assert_eq!(value.ty.udt_name, "numeric");

        // Unknown tables and columns are errors that name them.
        let e = read_table(&client, "tblNoSuchTable").await.unwrap_err();
        assert!(
            matches!(&e, CatalogueError::NoTable { table, schema }
            if table == "tblNoSuchTable" && schema == "public"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "table \"tblNoSuchTable\" not found in the central database (schema \"public\")"
        );
        // Table names are exact: openIMIS quotes them.
        let e = read_table(&client, "tblpolicy").await.unwrap_err();
        assert!(matches!(e, CatalogueError::NoTable { .. }), "{e:?}");
        let e = policy.column("PolicyColour").unwrap_err();
        assert_eq!(
            e.to_string(),
            "table \"tblPolicy\" has no column \"PolicyColour\""
        );
    });
}

/// Every column a mirror description names is in the real catalogue, spelled exactly as
/// the description spells it and of a type the mirror can write; every key but
/// tblControlNumber's draws from the sequence the description names.
#[test]
fn the_mirror_descriptions_match_the_real_catalogue() {
    let (_cluster, rt, client) = schema_db("descs");
    rt.block_on(async {
        let DescriptionCheck {
            mismatches,
            allocated,
        } = check_descriptions(&client).await;
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        // The description still names a sequence for it, which the real database lacks:
        // the writer allocates these keys itself (src/mirror/live.rs, tested below).
        assert_eq!(allocated, ["tblControlNumber"]);
    });
}

/// openIMIS-domain §5: the check is a setting, not a law of the data. The real demo data
/// holds 60 current insurees, of which 14 pass Tanzania's rule and 4 have 8 digits; every one
/// is a CHFID as it stands, and the rule only counts what a typed check would refuse.
#[test]
fn every_current_chfid_of_the_real_demo_data_is_taken_as_it_is() {
    use imis_gateway::domain::{Chfid, ChfidError, ChfidRule};
    let cluster = OpenImisPg::start();
    let db = "chfids";
    cluster.create(db, Data::Demo);
    let listed = cluster.pg.query_in(
        db,
        r#"SELECT "CHFID" FROM "tblInsuree" WHERE "ValidityTo" IS NULL ORDER BY "InsureeID""#,
    );
    let central: Vec<&str> = listed.lines().collect();
    assert_eq!(central.len(), 60);
    let rule = ChfidRule::default();
    let (mut pass, mut eight) = (0, 0);
    for c in &central {
        let chfid = Chfid::from_central(c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(chfid.as_str(), *c, "kept as stored");
        match rule.flags(c) {
            None => pass += 1,
            Some(ChfidError::Format { got, .. }) if got.len() == 8 => eight += 1,
            Some(_) => {}
        }
    }
    assert_eq!((pass, eight), (14, 4), "{central:?}");
}

/// The writer's view of the real schema: every described and side table resolves, only
/// tblControlNumber's key is allocated by the writer, tblFamilySMS is spelled in lower case,
/// and every SELECT of the descriptions (with the pull's extras, which read tblFamilySMS)
/// runs on the demo data.
#[test]
fn the_writer_resolves_the_real_schema_and_its_selects_run_on_the_demo_data() {
    use imis_gateway::mirror::live::{KeySource, LiveSchema};
    use imis_gateway::mirror::schema::Select;
    let cluster = OpenImisPg::start();
    let dsn = cluster.create("live", Data::Demo);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = imis_gateway::mirror::connect(&dsn).await.expect("connect");
        let live = LiveSchema::read(&client)
            .await
            .expect("the real schema resolves");
        let mut allocated = Vec::new();
        for d in tables::ALL {
            let t = live.table(d.table.name).unwrap();
            match &t.key {
                KeySource::Allocate => allocated.push(d.table.name),
                KeySource::Sequence(seq) => assert!(seq.contains(d.table.pk), "{seq}"),
                KeySource::NoKey => panic!("{} has no key", d.table.name),
            }
        }
        assert_eq!(allocated, ["tblControlNumber"]);
        let sms = live.table("tblFamilySMS").unwrap();
        assert_eq!(sms.q("LanguageOfSMS"), "\"languageofsms\"");
        assert_eq!(sms.key, KeySource::NoKey);
        let villages = live.table("tblOfficerVillages").unwrap();
        assert!(matches!(villages.key, KeySource::Sequence(_)));
        for d in tables::ALL {
            for which in [Select::Columns, Select::Pull] {
                let sql = live.select(d, which).unwrap();
                let rows = client
                    .query(&sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {}", imis_gateway::mirror::db_detail(&e)));
                if d.table.name == "tblFamilies" {
                    assert_eq!(rows.len(), 21, "the demo's current families");
                }
            }
        }
    });
}
