//! `imis-gateway mirror verify`: compares the store with the central database and lists the
//! differences.
//!
//! Owns: the comparison of every mirrored record's expected row (the same mapping the writer
//! uses, [`Entity::row`], with references resolved through the id map) with the current
//! central row (`ValidityTo IS NULL`) of the same entity, column by column of the table's
//! description (read by name, as the pull reads it).
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
use tokio_postgres::Client;

use super::rows::{Entity, Mapped, Resolved};
use super::schema::{Desc, Named, Select};
use super::sql::{Col, Row, Ty, Val};
use super::{idmap, MirrorError};
use crate::domain::Id;
use crate::store::tx::Record;
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

/// Equal by openIMIS's own equivalences, which the import follows when it reads a row:
/// - an amount, period or percentage: a central NULL is the store's 0 (the store has no
///   NULL for them; tblProduct's optional numeric columns);
/// - text: NULL and '' are both "none" (openIMIS writes '' where a value is absent, e.g.
///   `Phone`; the store keeps no empty phone);
/// - a flag: NULL and false are both "no" (openIMIS reads `Poverty` NULL as false).
///
/// Anything else that differs is a real difference.
fn same(ours: &Canon, theirs: &Canon) -> bool {
    fn none_text(v: &Option<String>) -> bool {
        v.as_deref().is_none_or(str::is_empty)
    }
    ours == theirs
        || match (ours, theirs) {
            (Canon::Int(Some(0)), Canon::Int(None)) => true,
            (Canon::Text(a), Canon::Text(b)) => none_text(a) && none_text(b),
            (Canon::Bool(a), Canon::Bool(b)) => !a.unwrap_or(false) && !b.unwrap_or(false),
            _ => false,
        }
}

/// The SELECT expression that reads column `col` back in the form of `v` (the SELECT
/// itself is built from the table's description, [`Desc::select`]).
#[cfg(test)]
fn read_expr(col: &str, v: &Val) -> String {
    Ty::of(v).read_expr(col)
}

/// Column `c` of a central row, in the form its type is compared in.
fn read_val(r: &Named<'_>, c: Col) -> Result<Canon, MirrorError> {
    Ok(match c.ty {
        Ty::I16 | Ty::I32 | Ty::I64 | Ty::Money => Canon::Int(r.int(c)?),
        Ty::Bool => Canon::Bool(r.bool(c)?),
        Ty::Text => Canon::Text(r.text(c)?),
        Ty::Date => Canon::Date(r.date(c)?),
        Ty::Ts => Canon::Micros(r.ts(c)?.map(|t| t.timestamp_micros())),
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
    side.expected.insert(central, Expected { id, row });
    Ok(())
}

/// Streams the current central rows of `desc`'s table and compares them with `side`,
/// column by column of the description. Central rows no local record maps to are reported
/// for the tables the import loads completely (pulled without a filter).
async fn compare(
    client: &Client,
    desc: &'static Desc,
    side: Side,
    report: &mut VerifyReport,
) -> Result<(), MirrorError> {
    use futures_util::TryStreamExt;
    let Side {
        mut expected,
        skipped,
    } = side;
    let (table, kind) = (&desc.table, desc.kind);
    let report_only_central = desc.pull.as_ref().is_some_and(|p| p.only.is_none());
    let sql = desc.select(Select::Columns);
    let stream = client.query_raw(&sql, std::iter::empty::<i32>()).await?;
    let mut stream = std::pin::pin!(stream);
    while let Some(r) = stream.try_next().await? {
        let r = Named::new(&r, table)?;
        let central = r.key;
        let Some(exp) = expected.remove(&central) else {
            if report_only_central && !skipped.contains(&central) {
                report.differences.push(Difference::OnlyCentral {
                    table: table.name,
                    central,
                });
            }
            continue;
        };
        let columns = differing(&r, &exp.row, table.columns)?;
        if !columns.is_empty() {
            report.differences.push(Difference::Differs {
                kind,
                id: exp.id,
                table: table.name,
                central,
                columns,
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

/// The columns where the central row differs from the expected one: (column, store,
/// central).
fn differing(
    r: &Named<'_>,
    row: &Row,
    columns: &[Col],
) -> Result<Vec<(&'static str, Canon, Canon)>, MirrorError> {
    let mut diffs = Vec::new();
    for c in columns {
        let theirs = read_val(r, *c)?;
        let ours = row
            .iter()
            .find(|(name, _)| *name == c.name)
            .map(|(_, v)| canon(v))
            .unwrap_or(Canon::Text(None));
        if !same(&ours, &theirs) {
            diffs.push((c.name, ours, theirs));
        }
    }
    Ok(diffs)
}

/// Compares every record of `T` with its table.
async fn verify_kind<T: Record + Mapped>(
    client: &Client,
    store: &Store,
    report: &mut VerifyReport,
    wrap: fn(T) -> Entity,
) -> Result<(), MirrorError> {
    let mut side = Side::default();
    let mut failed: Option<MirrorError> = None;
    store.for_each_record::<T, _>(|r| match expect(store, wrap(r), &mut side, report) {
        Ok(()) => Ok(true),
        Err(e) => {
            failed = Some(e);
            Ok(false)
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    compare(client, T::DESC, side, report).await
}

/// Compares every mirrored record of the store with the central database.
pub async fn verify(client: &Client, store: &Store) -> Result<VerifyReport, MirrorError> {
    let mut report = VerifyReport::default();
    let r = &mut report;
    verify_kind(client, store, r, Entity::Location).await?;
    verify_kind(client, store, r, Entity::Product).await?;
    verify_kind(client, store, r, Entity::Officer).await?;
    verify_kind(client, store, r, Entity::Family).await?;
    verify_kind(client, store, r, Entity::Insuree).await?;
    verify_kind(client, store, r, Entity::Policy).await?;
    verify_kind(client, store, r, Entity::InsureePolicy).await?;
    verify_kind(client, store, r, Entity::Premium).await?;
    verify_kind(client, store, r, Entity::Payment).await?;
    verify_kind(client, store, r, Entity::ControlNumber).await?;
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
        // openIMIS's own equivalences, both ways: '' is no text, NULL is no flag.
        assert!(same(&Canon::Text(Some(String::new())), &Canon::Text(None)));
        assert!(same(&Canon::Text(None), &Canon::Text(Some(String::new()))));
        assert!(same(&Canon::Bool(Some(false)), &Canon::Bool(None)));
        assert!(same(&Canon::Bool(None), &Canon::Bool(Some(false))));
        // ...and nothing more: a value is never "none".
        assert!(!same(&Canon::Text(Some(" ".into())), &Canon::Text(None)));
        assert!(!same(
            &Canon::Text(Some("a".into())),
            &Canon::Text(Some("A".into()))
        ));
        assert!(!same(&Canon::Bool(Some(true)), &Canon::Bool(None)));
        assert!(!same(&Canon::Bool(None), &Canon::Bool(Some(true))));
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
