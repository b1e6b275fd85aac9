//! The mirror's descriptions resolved against the live catalogue of the central database,
//! and the allocation of keys the database does not draw itself.
//!
//! Owns: [`LiveSchema`] (every described table of [`super::tables`] and every side table
//! the writer touches, with each column's exact spelling and where each key comes from),
//! read once when the writer connects; the one-line [refusal](MirrorError::Refused) when
//! something the gateway needs is not there; and [`Keys`], the allocator of keys of tables
//! without a default.
//! Must never: name a column the database does not have (the SQL of [`super::sql`] spells
//! every column through a [`LiveTable`]), or allocate a key without holding the table lock
//! described below.
//!
//! **Required and optional columns.** A table's key, UUID, audit, validity and `LegacyID`
//! columns and every mapped column must exist and be of a type the mirror can write (else
//! the writer refuses to start, naming the table and column). The unmapped columns a
//! history copy carries are optional: one the database lacks (`tblPremium.RowID` after the
//! backend's migrations) is simply not copied.
//!
//! **Keys.** A key with a sequence (a `serial`, an identity, a default `nextval`) is drawn
//! from that sequence, as the catalogue names it. A key with nothing behind it
//! (`tblControlNumber."ControlNumberID"`: `bigint NOT NULL`, an IDENTITY on SQL Server but a
//! bare column in the PostgreSQL port) is allocated as `max(key) + 1` **after** taking
//! `LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE` in the writing transaction. That mode
//! conflicts with itself and with the ROW EXCLUSIVE lock every INSERT/UPDATE/DELETE takes,
//! so until the transaction ends no other session (another gateway, the openIMIS backend, a
//! script) can add a row to that table, while plain readers go on; the `max` is read by a
//! statement that starts after the lock is granted, so it sees every committed row. Further
//! keys in the same transaction continue from there. Why not an advisory lock plus a retry
//! on unique violation: it protects only the writers that know the lock, and a unique
//! violation aborts the whole batch transaction; the table lock protects against every
//! writer and costs only that other writers of that one table wait for our commit (a batch
//! is one short transaction). The lock is taken before this transaction writes the table,
//! so two writers cannot deadlock on it by upgrading.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::catalogue::{read_table, CatalogueError, IdSource, Identity, TableCatalogue};
use super::schema::{Desc, Select, Side, LEGACY_ID, VALIDITY_FROM, VALIDITY_TO};
use super::sql::{q, Table};
use super::{tables, MirrorError};

/// Where a table's new keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `nextval` of this sequence (as the catalogue prints it, usable as a regclass).
    Sequence(String),
    /// `max(key) + 1` under the table lock (see the module doc).
    Allocate,
    /// The table has no key the writer names (`tblFamilySMS`).
    NoKey,
}

/// One table as the connected database has it.
#[derive(Debug, Clone)]
pub struct LiveTable {
    /// Exactly as the description spells it (table names are matched exactly).
    pub name: &'static str,
    /// The key column's exact spelling, if the table has one the writer names.
    pub pk: Option<String>,
    pub key: KeySource,
    /// `GENERATED ALWAYS AS IDENTITY`: an INSERT supplying the key must say so.
    pub identity_always: bool,
    /// Described name → the database's spelling; a described optional column the database
    /// lacks is absent.
    spelled: HashMap<&'static str, String>,
}

impl LiveTable {
    /// The database's spelling of the described column `name`, if it has the column.
    pub fn col(&self, name: &str) -> Option<&str> {
        self.spelled.get(name).map(String::as_str)
    }

    /// The described column `name`, quoted as the database spells it. Only called for
    /// required columns, which resolution guarantees; an unknown name is quoted as given, so
    /// the database names it in its refusal rather than the writer guessing.
    pub fn q(&self, name: &str) -> String {
        q(self.col(name).unwrap_or(name))
    }

    /// The quoted key column.
    pub fn q_pk(&self) -> String {
        q(self.pk.as_deref().unwrap_or_default())
    }

    /// `OVERRIDING SYSTEM VALUE ` when an INSERT supplies the key of an ALWAYS identity.
    pub fn overriding(&self) -> &'static str {
        if self.identity_always {
            "OVERRIDING SYSTEM VALUE "
        } else {
            ""
        }
    }

    /// The SQL expression of a fresh key drawn inside a statement, for a table with a
    /// sequence; `None` when the key must be allocated (see [`Keys`]).
    pub fn nextval_expr(&self) -> Option<String> {
        match &self.key {
            KeySource::Sequence(seq) => {
                Some(format!("nextval('{}'::regclass)", seq.replace('\'', "''")))
            }
            _ => None,
        }
    }
}

/// Every table the writer touches, resolved.
#[derive(Debug, Clone, Default)]
pub struct LiveSchema {
    tables: HashMap<&'static str, LiveTable>,
}

impl LiveSchema {
    /// Reads the catalogue of every described table and side table and resolves them;
    /// [`MirrorError::Refused`] names the first thing the gateway needs and the database
    /// lacks.
    pub async fn read(client: &Client) -> Result<LiveSchema, MirrorError> {
        let mut tables = HashMap::new();
        let descs = tables::ALL.into_iter().chain([&tables::payment::DETAILS]);
        for d in descs {
            let cat = catalogue(client, d.table.name).await?;
            tables.insert(d.table.name, resolve_desc(&cat, &d.table)?);
        }
        for s in tables::SIDES {
            let cat = catalogue(client, s.name).await?;
            tables.insert(s.name, resolve_side(&cat, s)?);
        }
        Ok(LiveSchema { tables })
    }

    /// The resolved table `name` (every described and side table is).
    pub fn table(&self, name: &str) -> Result<&LiveTable, MirrorError> {
        self.tables
            .get(name)
            .ok_or_else(|| MirrorError::Refused(format!("{name} not resolved")))
    }

    /// [`Desc::select`] with the columns spelled as the database spells them (each still
    /// named as described, so rows are read the same way).
    pub fn select(&self, desc: &Desc, which: Select) -> Result<String, MirrorError> {
        let t = self.table(desc.table.name)?;
        Ok(desc.select_spelled(which, &|c| t.col(c).unwrap_or(c).to_string()))
    }
}

async fn catalogue(client: &Client, table: &str) -> Result<TableCatalogue, MirrorError> {
    match read_table(client, table).await {
        Ok(c) => Ok(c),
        Err(CatalogueError::NoTable { table, .. }) => {
            Err(MirrorError::Refused(format!("table {table} missing")))
        }
        Err(e) => Err(MirrorError::Catalogue(e)),
    }
}

/// The refusal for a column that cannot be resolved.
fn refusal(table: &str, column: &str, e: CatalogueError) -> MirrorError {
    match e {
        CatalogueError::AmbiguousColumn { matches, .. } => MirrorError::Refused(format!(
            "{table}.{column} ambiguous: {}",
            matches.join(", ")
        )),
        _ => MirrorError::Refused(format!("{table}.{column} missing")),
    }
}

/// A described table against its catalogue.
pub fn resolve_desc(cat: &TableCatalogue, t: &Table) -> Result<LiveTable, MirrorError> {
    let mut spelled = HashMap::new();
    let mut required: Vec<&'static str> = vec![t.audit, VALIDITY_FROM, VALIDITY_TO, LEGACY_ID];
    required.extend(t.uuid);
    for name in required {
        let c = cat.column(name).map_err(|e| refusal(t.name, name, e))?;
        spelled.insert(name, c.name.clone());
    }
    for col in t.columns {
        let c = cat
            .column(col.name)
            .map_err(|e| refusal(t.name, col.name, e))?;
        if !c.accepts(col.ty) {
            return Err(MirrorError::Refused(format!(
                "{}.{} is {}, the mirror writes {:?}",
                t.name, col.name, c.ty.udt_name, col.ty
            )));
        }
        spelled.insert(col.name, c.name.clone());
    }
    for &name in t.unmapped {
        match cat.column(name) {
            Ok(c) => {
                spelled.insert(name, c.name.clone());
            }
            Err(CatalogueError::NoColumn { .. }) => {}
            Err(e) => return Err(refusal(t.name, name, e)),
        }
    }
    let (pk, key, identity_always) = key_of(cat, t.name, t.pk)?;
    spelled.insert(t.pk, pk.clone());
    Ok(LiveTable {
        name: t.name,
        pk: Some(pk),
        key,
        identity_always,
        spelled,
    })
}

/// A side table (every column it names is required) against its catalogue.
pub fn resolve_side(cat: &TableCatalogue, s: &Side) -> Result<LiveTable, MirrorError> {
    let mut spelled = HashMap::new();
    for &name in s.columns {
        let c = cat.column(name).map_err(|e| refusal(s.name, name, e))?;
        spelled.insert(name, c.name.clone());
    }
    let (pk, key, identity_always) = match s.pk {
        Some(pk) => {
            let (spelling, key, always) = key_of(cat, s.name, pk)?;
            spelled.insert(pk, spelling.clone());
            (Some(spelling), key, always)
        }
        None => (None, KeySource::NoKey, false),
    };
    Ok(LiveTable {
        name: s.name,
        pk,
        key,
        identity_always,
        spelled,
    })
}

/// The key column's spelling, where its values come from, and whether it is an ALWAYS
/// identity. A key filled by some other default (not a sequence) is refused: the writer
/// needs the key before the INSERT (a family and its head reference each other).
fn key_of(
    cat: &TableCatalogue,
    table: &str,
    pk: &str,
) -> Result<(String, KeySource, bool), MirrorError> {
    let c = cat.column(pk).map_err(|e| refusal(table, pk, e))?;
    let (key, always) = match c.id_source() {
        IdSource::Sequence(seq) => (KeySource::Sequence(seq), false),
        IdSource::Identity {
            kind,
            sequence: Some(seq),
        } => (KeySource::Sequence(seq), kind == Identity::Always),
        IdSource::None => (KeySource::Allocate, false),
        other => {
            return Err(MirrorError::Refused(format!(
                "{table}.{pk}: key filled by {other:?}, not a sequence"
            )))
        }
    };
    Ok((c.name.clone(), key, always))
}

/// Keys allocated in one writing transaction (see the module doc): per table, the next
/// free key once the table is locked.
#[derive(Debug, Default)]
pub struct Keys {
    next: HashMap<&'static str, i64>,
}

impl Keys {
    pub fn new() -> Keys {
        Keys::default()
    }

    /// A fresh key of `t`: its sequence's next value, or `max + 1` under the table lock.
    pub async fn next(
        &mut self,
        tx: &Transaction<'_>,
        t: &LiveTable,
    ) -> Result<i64, tokio_postgres::Error> {
        if let KeySource::Sequence(seq) = &t.key {
            let r = tx
                .query_typed_one(
                    "SELECT nextval($1::text::regclass)::int8",
                    &[(seq, Type::TEXT)],
                )
                .await?;
            return Ok(r.get(0));
        }
        if let Some(n) = self.next.get_mut(t.name) {
            let k = *n;
            *n += 1;
            return Ok(k);
        }
        tx.batch_execute(&format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            q(t.name)
        ))
        .await?;
        // A separate statement: its snapshot is taken after the lock was granted.
        let sql = format!(
            "SELECT COALESCE(max({pk}), 0)::int8 + 1 FROM {}",
            q(t.name),
            pk = t.q_pk()
        );
        let k: i64 = tx.query_typed_one(&sql, &[]).await?.get(0);
        self.next.insert(t.name, k + 1);
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::catalogue::tests::col as not_null;
    use crate::mirror::catalogue::{Column, Fill};
    use crate::mirror::tables::{control_number, family, premium};

    fn col(name: &str, udt: &str, default: Option<&str>) -> Column {
        Column {
            nullable: true,
            fill: Fill {
                default: default.map(str::to_string),
                ..Fill::default()
            },
            ..not_null(name, udt)
        }
    }

    fn cat(name: &str, cols: Vec<Column>) -> TableCatalogue {
        TableCatalogue {
            name: name.to_string(),
            schema: "public".to_string(),
            columns: cols,
        }
    }

    /// tblPremium as the real scripts have it, minus `drop`.
    fn premium_cat(drop: &str) -> TableCatalogue {
        let serial = "nextval('\"tblPremium_PremiumId_seq\"'::regclass)";
        let mut cols = vec![col("PremiumId", "int4", Some(serial))];
        for (n, u) in [
            ("PremiumUUID", "varchar"),
            ("LegacyID", "int4"),
            ("Amount", "numeric"),
            ("Receipt", "varchar"),
            ("PayDate", "date"),
            ("PayType", "varchar"),
            ("isPhotoFee", "bool"),
            ("isOffline", "bool"),
            ("ReportingId", "int4"),
            ("ValidityFrom", "timestamptz"),
            ("ValidityTo", "timestamptz"),
            ("AuditUserID", "int4"),
            ("PayerID", "int4"),
            ("PolicyID", "int4"),
            ("CreatedDate", "date"),
            ("RowID", "text"),
            ("Source", "varchar"),
            ("SourceVersion", "varchar"),
        ] {
            if n != drop {
                cols.push(col(n, u, None));
            }
        }
        cat("tblPremium", cols)
    }

    #[test]
    fn an_optional_column_the_database_lacks_is_left_out_and_a_required_one_refuses() {
        let t = resolve_desc(&premium_cat("CreatedDate"), &premium::DESC.table).unwrap();
        assert_eq!(t.col("CreatedDate"), None);
        assert_eq!(t.col("Amount"), Some("Amount"));
        assert_eq!(
            t.key,
            KeySource::Sequence("\"tblPremium_PremiumId_seq\"".into())
        );
        let e = resolve_desc(&premium_cat("Receipt"), &premium::DESC.table).unwrap_err();
        assert_eq!(e.to_string(), "refused: tblPremium.Receipt missing");
        let e = resolve_desc(&premium_cat("LegacyID"), &premium::DESC.table).unwrap_err();
        assert_eq!(e.to_string(), "refused: tblPremium.LegacyID missing");
    }

    #[test]
    fn a_column_of_a_type_the_mirror_cannot_write_refuses() {
        let mut c = premium_cat("");
        if let Some(a) = c.columns.iter_mut().find(|c| c.name == "Amount") {
            a.ty.udt_name = "int4".into();
        }
        let e = resolve_desc(&c, &premium::DESC.table).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused: tblPremium.Amount is int4, the mirror writes Money"
        );
    }

    #[test]
    fn a_bare_key_is_allocated_and_a_lower_case_side_table_is_spelled_as_it_is() {
        let cn = cat(
            "tblControlNumber",
            [
                ("ControlNumberID", "int8"),
                ("RequestedDate", "timestamptz"),
                ("ReceivedDate", "timestamptz"),
                ("RequestOrigin", "varchar"),
                ("ResponseOrigin", "varchar"),
                ("Status", "int4"),
                ("LegacyID", "int8"),
                ("ValidityFrom", "timestamptz"),
                ("ValidityTo", "timestamptz"),
                ("AuditedUserID", "int4"),
                ("PaymentID", "int8"),
                ("ControlNumber", "varchar"),
            ]
            .into_iter()
            .map(|(n, u)| col(n, u, None))
            .collect(),
        );
        let t = resolve_desc(&cn, &control_number::DESC.table).unwrap();
        assert_eq!(t.key, KeySource::Allocate);
        assert_eq!(t.nextval_expr(), None);
        // IssuedDate and Comment: unmapped, absent here, not copied.
        assert_eq!(t.col("IssuedDate"), None);

        let sms = cat(
            "tblFamilySMS",
            [
                "familyid",
                "approvalofsms",
                "languageofsms",
                "validityfrom",
                "validityto",
            ]
            .into_iter()
            .map(|n| col(n, "int4", None))
            .collect(),
        );
        let t = resolve_side(&sms, &family::SMS).unwrap();
        assert_eq!(t.q(family::SMS_FAMILY), "\"familyid\"");
        assert_eq!(t.key, KeySource::NoKey);
        let e = resolve_side(&cat("tblFamilySMS", vec![]), &family::SMS).unwrap_err();
        assert_eq!(e.to_string(), "refused: tblFamilySMS.FamilyID missing");
    }
}
