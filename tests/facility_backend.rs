//! Issue 21's acceptance, "the same CHFIDs checked against the real openIMIS backend's
//! eligibility answer": the real schema's demo database after the backend's migrations
//! (tests/openimis-be/setup.sh), with policies set to cover today, Suspended, Idle, one
//! left expired (as the demo has them: past their expiry, status still Active) and one
//! member's insuree-policy row closed; imported into a store and answered by
//! `facility::verify::answer`, and the same CHFIDs asked of the backend's own eligibility
//! code in a Django shell (`NativeEligibilityService.request`: what GraphQL
//! `policyEligibilityByInsuree` runs after its permission check and plug-in signals). The README's "Health facility verification" states the differences this
//! test pins: the backend answers the product of the member's insuree-policy whatever its
//! status or dates, even a closed row's, and nothing for a member who never had one.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::openimis_db::{setup_script, Data, OpenImisPg, Variant};
use imis_gateway::domain::eligibility::Reason;
use imis_gateway::domain::{Chfid, ChfidRule};
use imis_gateway::store::{Store, StoreOptions};

/// The backend's answer per CHFID (`CHFIDS`: the list, comma-separated), printed by its
/// Django shell: `ELIG|CHFID|prodId` (`None` when it found no insuree-policy).
const PY: &str = r#"
from core.models import User
from policy.services import NativeEligibilityService, EligibilityRequest, EligibilityResponse
user = User.objects.filter(i_user__isnull=False).order_by("id").first()
for chf in "CHFIDS".split(","):
    req = EligibilityRequest(chf_id=chf)
    r = NativeEligibilityService(user).request(req, EligibilityResponse(eligibility_request=req))
    print("ELIG|%s|%s" % (chf, r.prod_id))
"#;

fn sql(cluster: &OpenImisPg, db: &str, q: &str) -> String {
    cluster.pg.query_in(db, q)
}

/// (policy id, head CHFID, another member's CHFID with a row) of current demo policies whose
/// family has two members with current insuree-policy rows.
fn policies(cluster: &OpenImisPg, db: &str) -> Vec<(i64, String, String)> {
    let out = sql(
        cluster,
        db,
        r#"SELECT P."PolicyID" || '|' || min(I."CHFID") || '|' || max(I."CHFID")
           FROM "tblPolicy" P JOIN "tblInsureePolicy" IP ON IP."PolicyId" = P."PolicyID"
           JOIN "tblInsuree" I ON I."InsureeID" = IP."InsureeID"
           WHERE P."ValidityTo" IS NULL AND IP."ValidityTo" IS NULL AND I."ValidityTo" IS NULL
           GROUP BY P."PolicyID" HAVING count(DISTINCT I."CHFID") >= 2 ORDER BY 1"#,
    );
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            Some((
                f.next()?.trim().parse().ok()?,
                f.next()?.trim().into(),
                f.next()?.trim().into(),
            ))
        })
        .collect()
}

/// Sets policy `id` and its insuree-policy rows to cover -30..+300 days from today with
/// `status`; unpaid (no effective date) when `paid` is false.
fn set_policy(cluster: &OpenImisPg, db: &str, id: i64, status: i32, paid: bool) {
    let eff = if paid { "current_date - 30" } else { "NULL" };
    sql(
        cluster,
        db,
        &format!(
            r#"UPDATE "tblPolicy" SET "StartDate" = current_date - 30, "EffectiveDate" = {eff},
               "ExpiryDate" = current_date + 300, "PolicyStatus" = {status} WHERE "PolicyID" = {id}"#
        ),
    );
    sql(
        cluster,
        db,
        &format!(
            r#"UPDATE "tblInsureePolicy" SET "StartDate" = current_date - 30, "EffectiveDate" = {eff},
               "ExpiryDate" = current_date + 300 WHERE "PolicyId" = {id} AND "ValidityTo" IS NULL"#
        ),
    );
}

fn backend(dsn_keywords: &str, chfids: &[&str]) -> BTreeMap<String, String> {
    let out = Command::new("bash")
        .arg(setup_script())
        .args(["manage", dsn_keywords, "shell", "-c"])
        .arg(PY.replace("CHFIDS", &chfids.join(",")))
        .output()
        .expect("run setup.sh manage");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ELIG|"))
        .filter_map(|l| l.split_once('|'))
        .map(|(c, p)| (c.to_string(), p.to_string()))
        .collect()
}

#[test]
fn the_same_chfids_against_the_backends_eligibility() {
    let cluster = OpenImisPg::start();
    let db = "elig";
    let dsn = cluster.create_variant(db, Variant::Migrated, Data::Demo);
    let ps = policies(&cluster, db);
    assert!(ps.len() >= 4, "{ps:?}");
    let (covered, suspended, idle, expired) = (&ps[0], &ps[1], &ps[2], &ps[3]);
    set_policy(&cluster, db, covered.0, 2, true);
    set_policy(&cluster, db, suspended.0, 4, true);
    set_policy(&cluster, db, idle.0, 1, false);
    // The covered family's second member loses their row: "not on the policy".
    let off = &covered.2;
    sql(
        &cluster,
        db,
        &format!(
            r#"UPDATE "tblInsureePolicy" SET "ValidityTo" = now() WHERE "ValidityTo" IS NULL
               AND "InsureeID" = (SELECT "InsureeID" FROM "tblInsuree" WHERE "CHFID" = '{off}'
               AND "ValidityTo" IS NULL)"#
        ),
    );
    // A current member with no insuree-policy row at all, if the demo has one.
    let rowless = sql(
        &cluster,
        db,
        r#"SELECT I."CHFID" FROM "tblInsuree" I WHERE I."ValidityTo" IS NULL AND NOT EXISTS
           (SELECT 1 FROM "tblInsureePolicy" IP WHERE IP."InsureeID" = I."InsureeID")
           ORDER BY 1 LIMIT 1"#,
    );
    let rowless = rowless.trim().to_string();
    let mut cases: Vec<(&str, Reason)> = vec![
        (&covered.1, Reason::Covered),
        (off, Reason::NotOnPolicy),
        (&suspended.1, Reason::Suspended),
        (&idle.1, Reason::Unpaid),
        (&expired.1, Reason::Expired),
    ];

    // Ours: the database imported, each CHFID answered.
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = imis_gateway::mirror::connect(&dsn).await.expect("connect");
        imis_gateway::mirror::import::into_dir(
            &client,
            dir.path(),
            StoreOptions::default(),
            ChfidRule::default(),
            |_, _| {},
        )
        .await
        .expect("import");
    });
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let today = imis_gateway::domain::eat_date(chrono::Utc::now());
    let rowless_reason = (!rowless.is_empty()).then(|| {
        let a = imis_gateway::facility::verify::answer(
            &store,
            Chfid::from_central(&rowless).unwrap(),
            today,
        )
        .unwrap()
        .expect("imported member");
        a.eligibility.reason
    });
    if let Some(r) = rowless_reason {
        assert!(
            matches!(r, Reason::NotOnPolicy | Reason::NoPolicy),
            "{rowless}: {r:?}"
        );
        cases.push((&rowless, r));
    }
    for (chfid, want) in &cases {
        let a = imis_gateway::facility::verify::answer(
            &store,
            Chfid::from_central(chfid).unwrap(),
            today,
        )
        .unwrap()
        .expect("imported member");
        assert_eq!(a.eligibility.reason, *want, "{chfid}");
    }
    drop(store);

    // The backend's: the product of the member's insuree-policy with the latest expiry,
    // whatever the policy's status or dates (it answers limits left, not cover), and even
    // when that row was closed (it filters the policy's and product's validity, not the
    // row's): so the member taken off the policy still gets the product there. None only
    // for a member who never had a row.
    let chfids: Vec<&str> = cases.iter().map(|(c, _)| *c).collect();
    let theirs = backend(&dsn, &chfids);
    for (chfid, _) in &cases {
        let prod = theirs
            .get(*chfid)
            .unwrap_or_else(|| panic!("{chfid}: {theirs:?}"));
        if *chfid == rowless.as_str() {
            assert_eq!(prod, "None", "{chfid}");
        } else {
            assert_ne!(prod, "None", "{chfid}");
        }
    }
    eprintln!("ours vs the backend's prodId: {cases:?} / {theirs:?}");
}
