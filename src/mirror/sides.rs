//! The writes to the side tables the writer keeps in step with a described one:
//! `tblFamilySMS` (a family's SMS preference) and `tblOfficerVillages` (an officer's
//! villages).
//!
//! Owns: those two tables' history conventions (tblFamilySMS: the current row is closed
//! (ValidityTo set) and a new one inserted; tblOfficerVillages: a village gone is closed, a
//! new one inserted), every column spelled as the live catalogue spells it
//! ([`super::live`]: tblFamilySMS's columns are lower case in the real scripts).
//! Must never: name a column but through its [`LiveTable`], or write when the current rows
//! already hold the values (a replayed write changes nothing).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::live::{KeySource, Keys, LiveSchema};
use super::schema::{VALIDITY_FROM, VALIDITY_TO};
use super::sql::q;
use super::tables::family::{SMS, SMS_APPROVAL, SMS_FAMILY, SMS_LANG};
use super::tables::officer::{VILLAGES_TABLE, VILLAGE_AUDIT, VILLAGE_LOCATION, VILLAGE_OFFICER};
use super::MirrorError;
use crate::domain::Family;

/// Makes the current `tblFamilySMS` row of central family `family` hold `f`'s preference.
pub async fn family_sms(
    tx: &Transaction<'_>,
    live: &LiveSchema,
    family: i64,
    f: &Family,
    now: DateTime<Utc>,
) -> Result<(), MirrorError> {
    let t = live.table(SMS.name)?;
    let (tbl, fam) = (q(SMS.name), t.q(SMS_FAMILY));
    let (appr, lang_c) = (t.q(SMS_APPROVAL), t.q(SMS_LANG));
    let (from, to) = (t.q(VALIDITY_FROM), t.q(VALIDITY_TO));
    let fid = family as i32;
    let lang = f.sms.language.code();
    let same = tx
        .query_typed_opt(
            &format!(
                "SELECT 1 FROM {tbl} WHERE {fam} = $1 AND {to} IS NULL \
                 AND {appr} IS NOT DISTINCT FROM $2 AND {lang_c} IS NOT DISTINCT FROM $3"
            ),
            &[
                (&fid, Type::INT4),
                (&f.sms.approved, Type::BOOL),
                (&lang, Type::TEXT),
            ],
        )
        .await?;
    if same.is_some() {
        return Ok(());
    }
    tx.execute_typed(
        &format!("UPDATE {tbl} SET {to} = $2 WHERE {fam} = $1 AND {to} IS NULL"),
        &[(&fid, Type::INT4), (&now, Type::TIMESTAMPTZ)],
    )
    .await?;
    tx.execute_typed(
        &format!("INSERT INTO {tbl} ({fam}, {appr}, {lang_c}, {from}) VALUES ($1, $2, $3, $4)"),
        &[
            (&fid, Type::INT4),
            (&f.sms.approved, Type::BOOL),
            (&lang, Type::TEXT),
            (&now, Type::TIMESTAMPTZ),
        ],
    )
    .await?;
    Ok(())
}

/// Makes the current `tblOfficerVillages` rows of central officer `officer` the villages
/// `want` (central location ids).
pub async fn officer_villages(
    tx: &Transaction<'_>,
    live: &LiveSchema,
    keys: &mut Keys,
    officer: i64,
    want: &HashSet<i32>,
    (audit, now): (i32, DateTime<Utc>),
) -> Result<(), MirrorError> {
    let t = live.table(VILLAGES_TABLE.name)?;
    let (tbl, off, loc) = (
        q(VILLAGES_TABLE.name),
        t.q(VILLAGE_OFFICER),
        t.q(VILLAGE_LOCATION),
    );
    let (from, to, aud) = (t.q(VALIDITY_FROM), t.q(VALIDITY_TO), t.q(VILLAGE_AUDIT));
    let oid = officer as i32;
    let rows = tx
        .query_typed(
            &format!("SELECT {loc}::int4 FROM {tbl} WHERE {off} = $1 AND {to} IS NULL"),
            &[(&oid, Type::INT4)],
        )
        .await?;
    let have: HashSet<i32> = rows
        .iter()
        .filter_map(|r| r.get::<_, Option<i32>>(0))
        .collect();
    for gone in have.difference(want) {
        tx.execute_typed(
            &format!("UPDATE {tbl} SET {to} = $3 WHERE {off} = $1 AND {loc} = $2 AND {to} IS NULL"),
            &[
                (&oid, Type::INT4),
                (gone, Type::INT4),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    }
    for new in want.difference(&have) {
        let cols = format!("{off}, {loc}, {from}, {aud}");
        if t.key == KeySource::Allocate {
            // No default behind the key: allocated under the table lock, as any such key.
            let k = keys.next(tx, t).await?;
            tx.execute_typed(
                &format!(
                    "INSERT INTO {tbl} ({cols}, {}) VALUES ($1, $2, $3, $4, $5::int8)",
                    t.q_pk()
                ),
                &[
                    (&oid, Type::INT4),
                    (new, Type::INT4),
                    (&now, Type::TIMESTAMPTZ),
                    (&audit, Type::INT4),
                    (&k, Type::INT8),
                ],
            )
            .await?;
        } else {
            tx.execute_typed(
                &format!("INSERT INTO {tbl} ({cols}) VALUES ($1, $2, $3, $4)"),
                &[
                    (&oid, Type::INT4),
                    (new, Type::INT4),
                    (&now, Type::TIMESTAMPTZ),
                    (&audit, Type::INT4),
                ],
            )
            .await?;
        }
    }
    Ok(())
}
