//! The description of a mirrored openIMIS table, and reading its rows by column name.
//!
//! Owns: [`Desc`] (the table spec the writer uses, the columns both directions map, the
//! natural key of a table without a UUID, and what the pull reads besides the columns), the
//! SELECT built from a description, and [`Named`], the accessor that reads a central row by
//! column name. The descriptions themselves live with their mappings in [`super::tables`].
//! Must never: name a column itself (names come from the descriptions, and the writer
//! spells them as the live catalogue does, [`super::live`]) or touch the database.

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row as PgRow;
use uuid::Uuid;

use super::sql::{q, Col, Row, Table};
use super::MirrorError;

/// The validity columns of the history-row convention, common to every table.
pub const VALIDITY_FROM: &str = "ValidityFrom";
pub const VALIDITY_TO: &str = "ValidityTo";
/// The history row's pointer to its current row.
pub const LEGACY_ID: &str = "LegacyID";

/// The alias of the described table in its SELECT (pull extras refer to it).
pub const ALIAS: &str = "t";

/// One central table as the mirror sees it.
#[derive(Debug)]
pub struct Desc {
    /// The entity kind named in mirror writes and the id map.
    pub kind: &'static str,
    /// Name, key, UUID, audit column, sequence and columns ([`Table::columns`] are the
    /// mapped ones).
    pub table: Table,
    /// How a current row is found in a table without a UUID (empty with a UUID).
    pub natural_key: &'static [Col],
    /// What the pull reads of this table, if it pulls it.
    pub pull: Option<Pull>,
}

/// A table the writer keeps in step with a described one (`tblFamilySMS`,
/// `tblOfficerVillages`): its columns, every one required, and its key if it has one.
#[derive(Debug)]
pub struct Side {
    pub name: &'static str,
    pub pk: Option<&'static str>,
    pub columns: &'static [&'static str],
}

/// What the pull reads besides the mapped columns.
#[derive(Debug)]
pub struct Pull {
    /// Named SQL expressions over the table (aliased [`ALIAS`]), e.g. rows of a child table.
    pub extra: &'static [(&'static str, &'static str)],
    /// A further condition on the rows pulled.
    pub only: Option<&'static str>,
}

/// Which SELECT of a described table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The mapped columns of every current row (verify).
    Columns,
    /// With the pull's extras and filter (import).
    Pull,
    /// As `Pull`, only rows whose `ValidityFrom` is after `$1`, oldest first (pull).
    PullSince,
}

impl Pull {
    /// The table's columns alone, every current row.
    pub const PLAIN: Pull = Pull {
        extra: &[],
        only: None,
    };
}

impl Desc {
    /// The SELECT of the current rows: the key, the UUID, every mapped column in its read
    /// form and (pulling) the pull's extras, each named as the column, and `ValidityFrom`.
    pub fn select(&self, which: Select) -> String {
        self.select_spelled(which, &|c| c.to_string())
    }

    /// [`Desc::select`] with each column of the table spelled by `spell` (the live
    /// catalogue's spelling, [`super::live::LiveSchema::select`]); each is still named as
    /// described.
    pub fn select_spelled(&self, which: Select, spell: &dyn Fn(&str) -> String) -> String {
        let with_extra = which != Select::Columns;
        let since = which == Select::PullSince;
        let t = &self.table;
        let mut cols = vec![format!("{}::int8 AS {}", q(&spell(t.pk)), q(t.pk))];
        if let Some(u) = t.uuid {
            cols.push(format!("{}::text AS {}", q(&spell(u)), q(u)));
        }
        cols.extend(
            t.columns
                .iter()
                .map(|c| format!("{} AS {}", c.ty.read_expr(&spell(c.name)), q(c.name))),
        );
        let (from, to) = (q(&spell(VALIDITY_FROM)), q(&spell(VALIDITY_TO)));
        let mut cond = vec![format!("{to} IS NULL")];
        if let (true, Some(p)) = (with_extra, &self.pull) {
            cols.extend(p.extra.iter().map(|(n, e)| format!("({e}) AS {}", q(n))));
            cond.extend(p.only.map(str::to_string));
        }
        cols.push(if from == q(VALIDITY_FROM) {
            from.clone()
        } else {
            format!("{from} AS {}", q(VALIDITY_FROM))
        });
        let mut sql = format!(
            "SELECT {} FROM {} {ALIAS} WHERE ",
            cols.join(", "),
            q(t.name)
        );
        if since {
            cond.push(format!("{from} > $1"));
        }
        sql.push_str(&cond.join(" AND "));
        if since {
            sql.push_str(&format!(" ORDER BY {from}"));
        }
        sql
    }

    /// The natural key of `row` (a row of this table), if the table is found by one.
    pub fn natural_key_of(&self, row: &Row) -> Option<Row> {
        if self.natural_key.is_empty() {
            return None;
        }
        Some(
            row.iter()
                .filter(|(c, _)| self.natural_key.iter().any(|k| k.name == *c))
                .cloned()
                .collect(),
        )
    }
}

/// A central row read by column name; errors name the table and the row's key.
pub struct Named<'r> {
    row: &'r PgRow,
    pub table: &'static str,
    uuid: Option<&'static str>,
    pub key: i64,
}

impl<'r> Named<'r> {
    pub fn new(row: &'r PgRow, table: &Table) -> Result<Named<'r>, MirrorError> {
        Ok(Named {
            row,
            table: table.name,
            uuid: table.uuid,
            key: row.try_get(table.pk)?,
        })
    }

    /// A named value of the SELECT (a column or a pull extra), as `T`.
    pub fn get<T: FromSql<'r>>(&self, name: &str) -> Result<T, MirrorError> {
        Ok(self.row.try_get(name)?)
    }

    pub fn int(&self, c: Col) -> Result<Option<i64>, MirrorError> {
        self.get(c.name)
    }

    pub fn text(&self, c: Col) -> Result<Option<String>, MirrorError> {
        self.get(c.name)
    }

    pub fn bool(&self, c: Col) -> Result<Option<bool>, MirrorError> {
        self.get(c.name)
    }

    pub fn date(&self, c: Col) -> Result<Option<NaiveDate>, MirrorError> {
        self.get(c.name)
    }

    pub fn ts(&self, c: Col) -> Result<Option<DateTime<Utc>>, MirrorError> {
        self.get(c.name)
    }

    /// A value the record cannot do without.
    pub fn required<T>(&self, c: Col, v: Option<T>) -> Result<T, MirrorError> {
        v.ok_or_else(|| self.bad(format!("{} is NULL", c.name)))
    }

    /// An unsigned count or period; NULL or negative reads as 0 (the store has no NULL).
    pub fn count(&self, c: Col) -> Result<u32, MirrorError> {
        Ok(self
            .int(c)?
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0))
    }

    /// A one-letter code column, as the value of `all` whose `code` it is.
    pub fn one_of<T: Copy>(
        &self,
        c: Col,
        all: &[T],
        code: fn(T) -> char,
    ) -> Result<T, MirrorError> {
        let v = self.required(c, self.text(c)?)?;
        all.iter()
            .copied()
            .find(|t| v.chars().eq(std::iter::once(code(*t))))
            .ok_or_else(|| self.bad(format!("{} {v:?}", c.name)))
    }

    /// The row's UUID.
    pub fn uuid(&self) -> Result<Uuid, MirrorError> {
        let col = self.uuid.ok_or_else(|| self.bad("no UUID column"))?;
        let s: Option<String> = self.get(col)?;
        let s = s.unwrap_or_default();
        Uuid::parse_str(s.trim()).map_err(|source| MirrorError::CentralValue {
            table: self.table,
            id: self.key,
            column: col.to_string(),
            value: s.clone(),
            source: Box::new(source),
        })
    }

    /// A value that does not parse as what the column holds.
    pub fn invalid<E>(&self, c: &str, value: &str, source: E) -> MirrorError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        MirrorError::CentralValue {
            table: self.table,
            id: self.key,
            column: c.to_string(),
            value: value.to_string(),
            source: Box::new(source),
        }
    }

    pub fn bad(&self, reason: impl Into<String>) -> MirrorError {
        MirrorError::BadCentralRow {
            table: self.table,
            id: self.key,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::tables::{location, payment};

    #[test]
    fn a_select_names_every_column_and_pulls_with_extras_and_filter() {
        assert_eq!(
            location::DESC.select(Select::PullSince),
            "SELECT \"LocationId\"::int8 AS \"LocationId\", \
             \"LocationUUID\"::text AS \"LocationUUID\", \
             \"LocationCode\"::text AS \"LocationCode\", \
             \"LocationName\"::text AS \"LocationName\", \
             \"LocationType\"::text AS \"LocationType\", \
             \"ParentLocationId\"::int8 AS \"ParentLocationId\", \"ValidityFrom\" \
             FROM \"tblLocations\" t WHERE \"ValidityTo\" IS NULL AND \"ValidityFrom\" > $1 \
             ORDER BY \"ValidityFrom\""
        );
        let verify = payment::DESC.select(Select::Columns);
        assert!(verify.contains("round(\"ExpectedAmount\" * 100)::int8 AS \"ExpectedAmount\""));
        assert!(!verify.contains("BETWEEN") && !verify.contains("detail_lines"));
        let import = payment::DESC.select(Select::Pull);
        assert!(import.contains("AS \"detail_lines\""), "{import}");
        assert!(
            import.ends_with("\"PaymentStatus\" BETWEEN 0 AND 4"),
            "{import}"
        );
    }
}
