//! Our records as openIMIS rows and back: the one enum of mirrored records and what every
//! table's mapping provides.
//!
//! Owns: [`Entity`] (a mirrored record of any kind, whether queued for the writer or pulled
//! from the central database), the [`Mapped`] contract each table's mapping in
//! [`super::tables`] fulfils, and the resolution of references a row needs ([`Refs`]).
//! Must never: touch the database (see [`super::writer`]) or resolve ids itself: it names
//! the references it needs and receives their central ids.

use std::collections::HashMap;

use uuid::Uuid;

use super::idmap::LocalIds;
use super::schema::{Desc, Named};
use super::sql::{Row, Table};
use super::tables;
use super::MirrorError;
use crate::domain::{
    ControlNumber, Family, Id, Insuree, InsureePolicy, Location, Officer, Payment, Policy, Premium,
    Product,
};
use crate::store::codec::decode;

pub use super::tables::AUDIT_SYSTEM;

/// A reference to another entity: its kind and local id.
pub type Ref = (&'static str, Id);

/// Central ids of the references an entity needs.
pub type Resolved = HashMap<Ref, i64>;

/// What the mapping of one table provides, both ways.
pub trait Mapped: Sized {
    /// The table's description: name, key, columns.
    const DESC: &'static Desc;
    /// The other entities whose central ids the row needs.
    fn refs(&self) -> Vec<Ref>;
    /// The row's mapped columns (without key, UUID, validity and audit columns), in the
    /// order of the description's columns.
    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError>;
    /// The record of a current central row read with [`Desc::select`]; `None` for a
    /// table the pull does not read.
    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError>;
}

/// The resolved references of one entity's row; a missing one is an error naming both.
pub struct Refs<'a> {
    me: Ref,
    resolved: &'a Resolved,
}

impl Refs<'_> {
    pub fn get(&self, r: Ref) -> Result<i64, MirrorError> {
        self.resolved
            .get(&r)
            .copied()
            .ok_or(MirrorError::MissingRef {
                kind: self.me.0,
                id: self.me.1,
                ref_kind: r.0,
                ref_id: r.1,
            })
    }

    pub fn opt(&self, r: Option<Ref>) -> Result<Option<i64>, MirrorError> {
        r.map(|r| self.get(r)).transpose()
    }

    /// A reference that may be left out of the row when it is not resolved (a payment
    /// line's premium).
    pub fn lenient(&self, r: Option<Ref>) -> Option<i64> {
        r.and_then(|r| self.resolved.get(&r).copied())
    }
}

/// A mirrored record: a queued mirror write, or a record pulled from a central row.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    Location(Location),
    Product(Product),
    Officer(Officer),
    Family(Family),
    Insuree(Insuree),
    Policy(Policy),
    InsureePolicy(InsureePolicy),
    Premium(Premium),
    Payment(Payment),
    ControlNumber(ControlNumber),
}

/// Applies `$f` to the record inside any [`Entity`].
macro_rules! each {
    ($e:expr, $r:ident => $f:expr) => {
        match $e {
            Entity::Location($r) => $f,
            Entity::Product($r) => $f,
            Entity::Officer($r) => $f,
            Entity::Family($r) => $f,
            Entity::Insuree($r) => $f,
            Entity::Policy($r) => $f,
            Entity::InsureePolicy($r) => $f,
            Entity::Premium($r) => $f,
            Entity::Payment($r) => $f,
            Entity::ControlNumber($r) => $f,
        }
    };
}

fn desc_of<T: Mapped>(_: &T) -> &'static Desc {
    T::DESC
}

fn dec<T: serde::de::DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T, MirrorError> {
    decode(bytes).map_err(|source| MirrorError::Decode {
        kind: kind.to_string(),
        source,
    })
}

/// Reads a record of `T`'s table, if the pull reads that table.
fn read_as<T: Mapped>(
    r: &Named<'_>,
    ids: &mut LocalIds<'_>,
    wrap: fn(T) -> Entity,
) -> Result<Option<Entity>, MirrorError> {
    Ok(T::read(r, ids)?.map(wrap))
}

impl Entity {
    /// Decodes a queued mirror write of `kind`.
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<Entity, MirrorError> {
        Ok(match kind {
            "location" => Entity::Location(dec(kind, bytes)?),
            "product" => Entity::Product(dec(kind, bytes)?),
            "officer" => Entity::Officer(dec(kind, bytes)?),
            "family" => Entity::Family(dec(kind, bytes)?),
            "insuree" => Entity::Insuree(dec(kind, bytes)?),
            "policy" => Entity::Policy(dec(kind, bytes)?),
            "insuree_policy" => Entity::InsureePolicy(dec(kind, bytes)?),
            "premium" => Entity::Premium(dec(kind, bytes)?),
            "payment" => Entity::Payment(dec(kind, bytes)?),
            "control_number" => Entity::ControlNumber(dec(kind, bytes)?),
            other => return Err(MirrorError::UnknownKind(other.to_string())),
        })
    }

    /// Reads a current central row of `desc`'s table (selected with [`Desc::select`]);
    /// `None` for a table the pull does not read.
    pub fn read(
        desc: &Desc,
        r: &Named<'_>,
        ids: &mut LocalIds<'_>,
    ) -> Result<Option<Entity>, MirrorError> {
        match desc.kind {
            "location" => read_as(r, ids, Entity::Location),
            "product" => read_as(r, ids, Entity::Product),
            "officer" => read_as(r, ids, Entity::Officer),
            "family" => read_as(r, ids, Entity::Family),
            "insuree" => read_as(r, ids, Entity::Insuree),
            "policy" => read_as(r, ids, Entity::Policy),
            "insuree_policy" => read_as(r, ids, Entity::InsureePolicy),
            "premium" => read_as(r, ids, Entity::Premium),
            "payment" => read_as(r, ids, Entity::Payment),
            "control_number" => read_as(r, ids, Entity::ControlNumber),
            other => Err(MirrorError::UnknownKind(other.to_string())),
        }
    }

    /// The description of the entity's table.
    pub fn desc(&self) -> &'static Desc {
        each!(self, r => desc_of(r))
    }

    pub fn kind(&self) -> &'static str {
        self.desc().kind
    }

    pub fn id(&self) -> Id {
        each!(self, r => r.id)
    }

    pub fn table(&self) -> &'static Table {
        &self.desc().table
    }

    /// The entity's UUID, for the tables that have one (see [`Table::uuid`]).
    pub fn uuid(&self) -> Option<Uuid> {
        match self {
            Entity::Location(r) => Some(r.uuid),
            Entity::Product(r) => Some(r.uuid),
            Entity::Officer(r) => Some(r.uuid),
            Entity::Family(r) => Some(r.uuid),
            Entity::Insuree(r) => Some(r.uuid),
            Entity::Policy(r) => Some(r.uuid),
            Entity::Premium(r) => Some(r.uuid),
            Entity::Payment(r) => Some(r.uuid),
            Entity::InsureePolicy(_) | Entity::ControlNumber(_) => None,
        }
    }

    pub fn audit_user(&self, configured: i32) -> i32 {
        match self {
            Entity::Payment(_) | Entity::ControlNumber(_) => AUDIT_SYSTEM,
            _ => configured,
        }
    }

    /// The other entities whose central ids the row needs.
    pub fn refs(&self) -> Vec<Ref> {
        each!(self, r => r.refs())
    }

    /// The natural key of a row without a UUID, given the row.
    pub fn natural_key(&self, row: &Row) -> Option<Row> {
        self.desc().natural_key_of(row)
    }

    /// The row's columns (without pk, UUID, validity and audit columns).
    pub fn row(&self, refs: &Resolved) -> Result<Row, MirrorError> {
        let refs = Refs {
            me: (self.kind(), self.id()),
            resolved: refs,
        };
        each!(self, r => r.row(&refs))
    }
}

/// The description of every mirrored table, in dependency order.
pub fn all() -> [&'static Desc; 10] {
    tables::ALL
}

/// The description of an entity kind's table.
pub fn desc_of_kind(kind: &str) -> Result<&'static Desc, MirrorError> {
    tables::ALL
        .into_iter()
        .find(|d| d.kind == kind)
        .ok_or_else(|| MirrorError::UnknownKind(kind.to_string()))
}

/// The description of `tblPaymentDetails`, written with its payment.
pub const PAYMENT_DETAILS: Desc = tables::payment::DETAILS;

/// One `tblPaymentDetails` row of payment `payment` (central id).
pub fn payment_detail_row(payment: i64, d: &crate::domain::PaymentDetail, refs: &Resolved) -> Row {
    tables::payment::detail_row(
        payment,
        d,
        &Refs {
            me: ("payment", 0),
            resolved: refs,
        },
    )
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{Chfid, Gender, Language, SmsPreference};
    use crate::mirror::sql::{Ty, Val};
    use crate::store::fixtures as fx;

    fn family() -> Family {
        Family {
            id: 10,
            uuid: Uuid::from_u128(10),
            head: 11,
            village: 1,
            poverty: true,
            sms: SmsPreference {
                approved: true,
                language: Language::En,
            },
        }
    }

    #[test]
    fn a_row_names_its_references_and_fails_clearly_when_one_is_unresolved() {
        let e = Entity::Family(family());
        assert_eq!(e.refs(), vec![("insuree", 11), ("location", 1)]);
        let mut refs = Resolved::new();
        refs.insert(("insuree", 11), 501);
        let err = e.row(&refs).unwrap_err();
        assert!(err.to_string().contains("location 1"), "{err}");
        refs.insert(("location", 1), 7);
        let row = e.row(&refs).unwrap();
        assert_eq!(row[0], ("InsureeID", Val::I32(Some(501))));
        assert_eq!(row[2], ("Poverty", Val::Bool(Some(true))));
    }

    #[test]
    fn decode_refuses_unknown_kinds_and_bad_bytes() {
        assert!(matches!(
            Entity::decode("claim", b"x"),
            Err(MirrorError::UnknownKind(_))
        ));
        assert!(matches!(
            Entity::decode("family", b"\x01"),
            Err(MirrorError::Decode { .. })
        ));
        let i = insuree();
        let bytes = crate::store::codec::encode(&i).unwrap();
        let e = Entity::decode("insuree", &bytes).unwrap();
        assert_eq!(
            (e.kind(), e.id(), e.table().name),
            ("insuree", 11, "tblInsuree")
        );
    }

    fn insuree() -> Insuree {
        Insuree {
            id: 11,
            uuid: Uuid::from_u128(11),
            chfid: Chfid::from_base(7_070_707).unwrap(),
            family: 10,
            is_head: true,
            last_name: "Hamisi".into(),
            other_names: "Juma".into(),
            dob: NaiveDate::from_ymd_opt(1985, 6, 1).unwrap(),
            gender: Gender::Male,
            relationship: None,
            phone: None,
            card_issued: false,
        }
    }

    /// Every record's row carries exactly its description's columns, in order and typed as
    /// described, so the writer, the pull and verify agree on one column list.
    #[test]
    fn rows_follow_their_descriptions() {
        let mut refs = Resolved::new();
        let records = [
            Entity::Location(fx::location(1, "R1")),
            Entity::Product(fx::product(2, "P1")),
            Entity::Officer(fx::officer(3, "O1", Some("255700000001"))),
            Entity::Family(family()),
            Entity::Insuree(insuree()),
            Entity::Policy(fx::policy(5, 10)),
            Entity::InsureePolicy(fx::insuree_policy(6, 11, 5)),
            Entity::Premium(fx::premium(7, 5)),
            Entity::Payment(fx::payment(8, Some("991"))),
            Entity::ControlNumber(fx::control_number(9, "991", Some(8))),
        ];
        for e in &records {
            for r in e.refs() {
                refs.insert(r, 100);
            }
        }
        for e in &records {
            let row = e.row(&refs).unwrap();
            let cols = e.table().columns;
            let names: Vec<&str> = row.iter().map(|(c, _)| *c).collect();
            let want: Vec<&str> = cols.iter().map(|c| c.name).collect();
            assert_eq!(names, want, "{}", e.kind());
            for ((c, v), col) in row.iter().zip(cols) {
                assert_eq!(Ty::of(v), col.ty, "{} {c}", e.kind());
            }
        }
    }
}
