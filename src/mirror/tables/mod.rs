//! One description per mirrored openIMIS table, each with its mapping both ways.
//!
//! Owns: for every table, in a file of its own, the table's [`Desc`] (name, key, UUID,
//! audit column, sequence, the mapped columns with their types, the columns a history copy
//! carries besides, and what the pull reads) and the [`Mapped`](super::rows::Mapped)
//! implementation of its record: the row the writer writes and the record the pull reads,
//! both through the same column values.
//! Must never: touch the database or resolve ids (references are named and handed in).

use chrono::{DateTime, NaiveDate, Utc};

use super::import::Flagged;
use super::schema::{Desc, Named};
use super::MirrorError;
use crate::domain::{Money, Msisdn};

pub mod control_number;
pub mod family;
pub mod insuree;
pub mod insuree_policy;
pub mod location;
pub mod officer;
pub mod payment;
pub mod policy;
pub mod premium;
pub mod product;

/// Counts what our own input rules would have refused in a central row of `desc`'s table
/// (the import keeps such a row as it is; see [`super::import`]).
pub fn flag(desc: &Desc, r: &Named<'_>, f: &mut Flagged) -> Result<(), MirrorError> {
    match desc.kind {
        "insuree" => insuree::flag(r, f),
        "officer" => officer::flag(r, f),
        "payment" => payment::flag(r, f),
        _ => Ok(()),
    }
}

/// What every table's mapping uses.
mod prelude {
    pub use super::super::idmap::LocalIds;
    pub use super::super::rows::{Mapped, Ref, Refs};
    pub use super::super::schema::{Desc, Named, Pull};
    pub use super::super::sql::{Col, Row, Table, Ty};
    pub use super::super::MirrorError;
}

/// `AuditUserID` of rows written on behalf of the system (the ePayment procedures' −1).
pub const AUDIT_SYSTEM: i32 = -1;

/// Every mirrored table, in dependency order (the pull reads them in this order; a
/// referenced entity's id is allocated on first sight, so it only matters for readable
/// progress).
pub const ALL: [&Desc; 10] = [
    &location::DESC,
    &product::DESC,
    &officer::DESC,
    &family::DESC,
    &insuree::DESC,
    &policy::DESC,
    &insuree_policy::DESC,
    &premium::DESC,
    &payment::DESC,
    &control_number::DESC,
];

/// The tables the writer keeps in step with a described one.
pub const SIDES: [&super::schema::Side; 2] = [&family::SMS, &officer::VILLAGES_TABLE];

/// A date written to a datetime column: midnight UTC.
fn midnight(d: NaiveDate) -> Option<DateTime<Utc>> {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

fn cents(m: Money) -> Option<i64> {
    Some(m.cents())
}

/// An unsigned count or period as a column value.
fn count(v: u32) -> Option<i64> {
    Some(i64::from(v))
}

fn phone_text(p: &Option<Msisdn>) -> Option<String> {
    p.as_ref().map(|p| p.as_str().to_string())
}

/// A central phone number; one that does not parse is dropped (the column is free text).
fn phone(s: Option<String>) -> Option<Msisdn> {
    s.and_then(|p| Msisdn::parse(&p).ok())
}

/// A money column read back; NULL reads as 0 (the store has no NULL amount).
fn money(cents: Option<i64>) -> Money {
    Money(cents.unwrap_or(0))
}
