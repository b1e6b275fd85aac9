//! `imis-gateway mirror verify`: compares the store with the central database and lists the
//! differences.
//!
//! Owns: the comparison of every mirrored record's expected row (the same mapping the writer
//! uses, [`Entity::row`], with references resolved through the id map) with the current
//! central row (`ValidityTo IS NULL`) of the same entity, column by column.
//! Must never: write anywhere, or report an entity that still has an unmirrored write as a
//! difference (it is counted as pending: the mirror has not caught up yet).
//!
//! Each table is read once as a stream (current rows only) and compared in memory, so the
//! cost is one pass over each side, not one query per record. Central rows that no local
//! record maps to are reported for the tables the import loads completely; payments and
//! control numbers are not (the import loads only open payments).

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::{Client, Row as PgRow};

use super::rows::{Entity, Resolved};
use super::sql::{q, Row, Table, Val};
use super::{idmap, MirrorError};
use crate::domain::{
    ControlNumber, Family, Id, Insuree, InsureePolicy, Location, Officer, Payment, Policy, Premium,
    Product,
};
use crate::store::{mirror_entity_key, Store, MIRROR_PENDING_NS};

/// A column value in a form both sides can be compared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canon {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Date(Option<NaiveDate>),
    /// Timestamps to the microsecond (PostgreSQL's precision).
    Micros(Option<i64>),
}

impl fmt::Display for Canon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Canon::Int(Some(v)) => write!(f, "{v}"),
            Canon::Bool(Some(v)) => write!(f, "{v}"),
            Canon::Text(Some(v)) => write!(f, "{v:?}"),
            Canon::Date(Some(v)) => write!(f, "{v}"),
            Canon::Micros(Some(v)) => match DateTime::<Utc>::from_timestamp_micros(*v) {
                Some(t) => write!(f, "{}", t.to_rfc3339()),
                None => write!(f, "{v}µs"),
            },
            _ => f.write_str("NULL"),
        }
    }
}

fn canon(v: &Val) -> Canon {
    match v {
        Val::I16(x) => Canon::Int(x.map(i64::from)),
        Val::I32(x) => Canon::Int(x.map(i64::from)),
        Val::I64(x) | Val::Money(x) => Canon::Int(*x),
        Val::Bool(x) => Canon::Bool(*x),
        Val::Text(x) | Val::UuidType(x) => Canon::Text(x.clone()),
        Val::Date(x) => Canon::Date(*x),
        Val::Ts(x) => Canon::Micros(x.map(|t| t.timestamp_micros())),
    }
}

/// Equal, or a central NULL where the store holds 0: the store has no NULL for amounts,
/// periods and percentages, and the import reads a NULL one as 0 (tblProduct's optional
/// numeric columns), so that is the same value.
fn same(ours: &Canon, theirs: &Canon) -> bool {
    ours == theirs || matches!((ours, theirs), (Canon::Int(Some(0)), Canon::Int(None)))
}

/// The SELECT expression that reads column `col` back in the form of `v`.
fn read_expr(col: &str, v: &Val) -> String {
    match v {
        Val::I16(_) | Val::I32(_) | Val::I64(_) => format!("{}::int8", q(col)),
        Val::Money(_) => format!("round({} * 100)::int8", q(col)),
        Val::Text(_) | Val::UuidType(_) => format!("{}::text", q(col)),
        Val::Date(_) => format!("{}::date", q(col)),
        Val::Bool(_) | Val::Ts(_) => q(col),
    }
}

fn read_val(r: &PgRow, i: usize, like: &Val) -> Result<Canon, MirrorError> {
    Ok(match like {
        Val::I16(_) | Val::I32(_) | Val::I64(_) | Val::Money(_) => Canon::Int(r.try_get(i)?),
        Val::Bool(_) => Canon::Bool(r.try_get(i)?),
        Val::Text(_) | Val::UuidType(_) => Canon::Text(r.try_get(i)?),
        Val::Date(_) => Canon::Date(r.try_get(i)?),
        Val::Ts(_) => Canon::Micros(
            r.try_get::<_, Option<DateTime<Utc>>>(i)?
                .map(|t| t.timestamp_micros()),
        ),
    })
}

/// One difference between the store and the central database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A local record with no current central row.
    Missing {
        kind: &'static str,
        id: Id,
        why: String,
    },
    /// A current central row that no local record maps to.
    OnlyCentral { table: &'static str, central: i64 },
    /// Both exist, and these columns differ: (column, store, central).
    Differs {
        kind: &'static str,
        id: Id,
        table: &'static str,
        central: i64,
        columns: Vec<(&'static str, Canon, Canon)>,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Missing { kind, id, why } => {
                write!(f, "{kind} {id}: not in the central database ({why})")
            }
            Difference::OnlyCentral { table, central } => {
                write!(f, "{table} {central}: only in the central database")
            }
            Difference::Differs {
                kind,
                id,
                table,
                central,
                columns,
            } => {
                write!(f, "{kind} {id} ({table} {central}):")?;
                for (c, local, central) in columns {
                    write!(f, " {c} store={local} central={central};")?;
                }
                Ok(())
            }
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records compared (pending ones excluded).
    pub checked: u64,
    /// Records skipped because they have a write the mirror has not applied yet.
    pub pending: u64,
    pub differences: Vec<Difference>,
}

struct Expected {
    id: Id,
    row: Row,
}

/// The expected rows of one kind: by central id, plus what could not be mapped.
#[derive(Default)]
struct Side {
    expected: HashMap<i64, Expected>,
    /// Central ids of entities skipped as pending (not "only central").
    skipped: HashSet<i64>,
    /// The column list (from the first row).
    columns: Option<Row>,
}

fn expect(
    store: &Store,
    e: Entity,
    side: &mut Side,
    report: &mut VerifyReport,
) -> Result<(), MirrorError> {
    let (kind, id) = (e.kind(), e.id());
    let central = idmap::central(store, kind, id)?;
    if store
        .aux_get(MIRROR_PENDING_NS, &mirror_entity_key(kind, id))?
        .is_some()
    {
        report.pending += 1;
        side.skipped.extend(central);
        return Ok(());
    }
    report.checked += 1;
    let Some(central) = central else {
        report.differences.push(Difference::Missing {
            kind,
            id,
            why: "never mirrored".into(),
        });
        return Ok(());
    };
    let mut refs = Resolved::new();
    for r in e.refs() {
        match idmap::central(store, r.0, r.1)? {
            Some(k) => {
                refs.insert(r, k);
            }
            None => {
                report.differences.push(Difference::Missing {
                    kind,
                    id,
                    why: format!("its {} {} was never mirrored", r.0, r.1),
                });
                return Ok(());
            }
        }
    }
    let row = e.row(&refs)?;
    if side.columns.is_none() {
        side.columns = Some(row.clone());
    }
    side.expected.insert(central, Expected { id, row });
    Ok(())
}

/// Streams the current central rows of `table` and compares them with `side`.
async fn compare(
    client: &Client,
    table: &'static Table,
    kind: &'static str,
    side: Side,
    report_only_central: bool,
    report: &mut VerifyReport,
) -> Result<(), MirrorError> {
    use futures_util::TryStreamExt;
    let Side {
        mut expected,
        skipped,
        columns,
    } = side;
    // Without a local record to learn the column list from, only the keys are read.
    let columns = columns.unwrap_or_default();
    let mut select = vec![format!("{}::int8", q(table.pk))];
    select.extend(columns.iter().map(|(c, v)| read_expr(c, v)));
    let sql = format!(
        "SELECT {} FROM {} WHERE \"ValidityTo\" IS NULL",
        select.join(", "),
        q(table.name)
    );
    let stream = client.query_raw(&sql, std::iter::empty::<i32>()).await?;
    let mut stream = std::pin::pin!(stream);
    while let Some(r) = stream.try_next().await? {
        let central: i64 = r.try_get(0)?;
        let Some(exp) = expected.remove(&central) else {
            if report_only_central && !skipped.contains(&central) {
                report.differences.push(Difference::OnlyCentral {
                    table: table.name,
                    central,
                });
            }
            continue;
        };
        let mut diffs = Vec::new();
        for (i, (col, like)) in columns.iter().enumerate() {
            let theirs = read_val(&r, i + 1, like)?;
            let ours = exp
                .row
                .iter()
                .find(|(c, _)| c == col)
                .map(|(_, v)| canon(v))
                .unwrap_or(Canon::Text(None));
            if !same(&ours, &theirs) {
                diffs.push((*col, ours, theirs));
            }
        }
        if !diffs.is_empty() {
            report.differences.push(Difference::Differs {
                kind,
                id: exp.id,
                table: table.name,
                central,
                columns: diffs,
            });
        }
    }
    let mut left: Vec<(i64, Expected)> = expected.into_iter().collect();
    left.sort_by_key(|(k, _)| *k);
    for (central, exp) in left {
        report.differences.push(Difference::Missing {
            kind,
            id: exp.id,
            why: format!("{} {central} has no current row", table.name),
        });
    }
    Ok(())
}

macro_rules! verify_kind {
    ($client:expr, $store:expr, $report:expr, $ty:ty, $variant:ident, $kind:literal, $only_central:expr) => {{
        let mut side = Side::default();
        let mut failed: Option<MirrorError> = None;
        $store.for_each_record::<$ty, _>(|r| {
            match expect($store, Entity::$variant(r), &mut side, $report) {
                Ok(()) => Ok(true),
                Err(e) => {
                    failed = Some(e);
                    Ok(false)
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let table = super::writer::table_of($kind)?;
        compare($client, table, $kind, side, $only_central, $report).await?;
    }};
}

/// Compares every mirrored record of the store with the central database.
pub async fn verify(client: &Client, store: &Store) -> Result<VerifyReport, MirrorError> {
    let mut report = VerifyReport::default();
    let r = &mut report;
    verify_kind!(client, store, r, Location, Location, "location", true);
    verify_kind!(client, store, r, Product, Product, "product", true);
    verify_kind!(client, store, r, Officer, Officer, "officer", true);
    verify_kind!(client, store, r, Family, Family, "family", true);
    verify_kind!(client, store, r, Insuree, Insuree, "insuree", true);
    verify_kind!(client, store, r, Policy, Policy, "policy", true);
    verify_kind!(
        client,
        store,
        r,
        InsureePolicy,
        InsureePolicy,
        "insuree_policy",
        true
    );
    verify_kind!(client, store, r, Premium, Premium, "premium", true);
    verify_kind!(client, store, r, Payment, Payment, "payment", false);
    verify_kind!(
        client,
        store,
        r,
        ControlNumber,
        ControlNumber,
        "control_number",
        false
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_in_one_form_and_a_central_null_amount_equals_zero() {
        assert_eq!(canon(&Val::I16(Some(4))), canon(&Val::I64(Some(4))));
        assert_eq!(
            canon(&Val::Money(Some(3_000_000))),
            Canon::Int(Some(3_000_000))
        );
        assert!(same(&Canon::Int(Some(0)), &Canon::Int(None)));
        assert!(!same(&Canon::Int(Some(2)), &Canon::Int(None)));
        assert!(!same(&Canon::Int(None), &Canon::Int(Some(0))));
        assert!(!same(&Canon::Text(Some(String::new())), &Canon::Text(None)));
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(
            canon(&Val::Ts(Some(t))),
            Canon::Micros(Some(1_700_000_000_123_456)),
            "PostgreSQL keeps microseconds"
        );
        assert_eq!(
            read_expr("LumpSum", &Val::Money(None)),
            "round(\"LumpSum\" * 100)::int8"
        );
    }

    #[test]
    fn differences_read_as_one_line_each() {
        let d = Difference::Differs {
            kind: "policy",
            id: 8,
            table: "tblPolicy",
            central: 1,
            columns: vec![("PolicyStatus", Canon::Int(Some(2)), Canon::Int(Some(4)))],
        };
        assert_eq!(
            d.to_string(),
            "policy 8 (tblPolicy 1): PolicyStatus store=2 central=4;"
        );
        let m = Difference::OnlyCentral {
            table: "tblFamilies",
            central: 9,
        };
        assert_eq!(m.to_string(), "tblFamilies 9: only in the central database");
    }
}
