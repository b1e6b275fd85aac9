//! Generic SQL over openIMIS tables: typed column values, insert, lookups by UUID and by
//! natural key, and the update with a history row (one statement, skipped when the current
//! row already holds the values or the write's history row exists).
//!
//! Owns: the quoting of identifiers and the history-row convention in one place.
//! Must never: build SQL from data (values are always parameters; only the table and column
//! names of [`Table`], spelled as the live catalogue spells them ([`LiveTable`]), are
//! spliced, quoted).

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::live::LiveTable;
use super::schema::{LEGACY_ID, VALIDITY_FROM, VALIDITY_TO};

/// A column value and how it is cast on the way in.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    I16(Option<i16>),
    I32(Option<i32>),
    I64(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Date(Option<NaiveDate>),
    Ts(Option<DateTime<Utc>>),
    /// Cents, written to a numeric(18,2) column.
    Money(Option<i64>),
    /// Text written to a `uuid` column.
    UuidType(Option<String>),
}

impl Val {
    pub fn text(s: impl Into<String>) -> Val {
        Val::Text(Some(s.into()))
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::I16(v) => v,
            Val::I32(v) => v,
            Val::I64(v) | Val::Money(v) => v,
            Val::Bool(v) => v,
            Val::Text(v) | Val::UuidType(v) => v,
            Val::Date(v) => v,
            Val::Ts(v) => v,
        }
    }

    /// The parameter's type as sent (queries are typed, so each runs in one round trip
    /// without a separate prepare).
    fn ty(&self) -> Type {
        match self {
            Val::I16(_) => Type::INT2,
            Val::I32(_) => Type::INT4,
            Val::I64(_) | Val::Money(_) => Type::INT8,
            Val::Bool(_) => Type::BOOL,
            Val::Text(_) | Val::UuidType(_) => Type::TEXT,
            Val::Date(_) => Type::DATE,
            Val::Ts(_) => Type::TIMESTAMPTZ,
        }
    }

    /// The SQL expression of parameter `$n`. Every parameter is cast to the type of its Rust
    /// value, so PostgreSQL infers the parameter's type from the cast (not from the column)
    /// and converts to the column's type itself (int8 → an int4 key, text → varchar(n), which
    /// still refuses a value that is too long).
    fn expr(&self, n: usize) -> String {
        match self {
            Val::I16(_) => format!("${n}::int2"),
            Val::I32(_) => format!("${n}::int4"),
            Val::I64(_) => format!("${n}::int8"),
            Val::Bool(_) => format!("${n}::bool"),
            Val::Text(_) => format!("${n}::text"),
            Val::Date(_) => format!("${n}::date"),
            Val::Ts(_) => format!("${n}::timestamptz"),
            Val::Money(_) => format!("(${n}::int8 / 100.0)"),
            Val::UuidType(_) => format!("(${n}::text::uuid)"),
        }
    }
}

/// Column name → value.
pub type Row = Vec<(&'static str, Val)>;

/// A column's type as the mirror handles it: how a value is cast on the way in and the
/// form it is read back in (integers as int8, money as cents, text as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    I16,
    I32,
    I64,
    /// numeric(18,2), carried as cents.
    Money,
    Bool,
    Text,
    Date,
    Ts,
}

impl Ty {
    /// The type a value is written as.
    pub fn of(v: &Val) -> Ty {
        match v {
            Val::I16(_) => Ty::I16,
            Val::I32(_) => Ty::I32,
            Val::I64(_) => Ty::I64,
            Val::Money(_) => Ty::Money,
            Val::Bool(_) => Ty::Bool,
            Val::Text(_) | Val::UuidType(_) => Ty::Text,
            Val::Date(_) => Ty::Date,
            Val::Ts(_) => Ty::Ts,
        }
    }

    /// The SELECT expression that reads column `col` back in this type's read form.
    pub fn read_expr(self, col: &str) -> String {
        match self {
            Ty::I16 | Ty::I32 | Ty::I64 => format!("{}::int8", q(col)),
            Ty::Money => format!("round({} * 100)::int8", q(col)),
            Ty::Text => format!("{}::text", q(col)),
            Ty::Date => format!("{}::date", q(col)),
            Ty::Bool | Ty::Ts => q(col),
        }
    }
}

/// One mapped column of a central table: its name (as the database spells it) and type.
/// Mappings refer to columns through these values, never by a name of their own, so a
/// column is named in exactly one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col {
    pub name: &'static str,
    pub ty: Ty,
}

impl Col {
    pub const fn new(name: &'static str, ty: Ty) -> Col {
        Col { name, ty }
    }

    /// An integer for this column, in the column's width. Out-of-range values saturate
    /// (the store's unsigned counts and periods never reach them in practice).
    pub fn int(self, v: Option<i64>) -> (&'static str, Val) {
        let v = match self.ty {
            Ty::I16 => Val::I16(v.map(|x| x.clamp(i16::MIN.into(), i16::MAX.into()) as i16)),
            Ty::I32 => Val::I32(v.map(|x| x.clamp(i32::MIN.into(), i32::MAX.into()) as i32)),
            Ty::Money => Val::Money(v),
            _ => Val::I64(v),
        };
        (self.name, v)
    }

    pub fn text(self, v: Option<String>) -> (&'static str, Val) {
        (self.name, Val::Text(v))
    }

    pub fn bool(self, v: Option<bool>) -> (&'static str, Val) {
        (self.name, Val::Bool(v))
    }

    pub fn date(self, v: Option<NaiveDate>) -> (&'static str, Val) {
        (self.name, Val::Date(v))
    }

    pub fn ts(self, v: Option<DateTime<Utc>>) -> (&'static str, Val) {
        (self.name, Val::Ts(v))
    }
}

/// An openIMIS table as the mirror writes it.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub pk: &'static str,
    /// The UUID column, if the table has one.
    pub uuid: Option<&'static str>,
    /// Whether that column is a real `uuid` (tblPayment) rather than varchar(36).
    pub uuid_is_uuid_type: bool,
    /// The audit user column, spelled as this table spells it.
    pub audit: &'static str,
    /// The pk's sequence as the real scripts name it (for reference: the writer draws keys
    /// from the sequence the live catalogue names, [`super::live`]).
    pub seq: &'static str,
    /// The columns the mirror maps to and from our records.
    pub columns: &'static [Col],
    /// The columns it does not map, which a history copy must carry as well (besides the
    /// pk, UUID, audit, validity columns and LegacyID).
    pub unmapped: &'static [&'static str],
}

/// A quoted identifier (a `"` inside is doubled, as SQL wants).
pub fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A typed query parameter.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

fn params(row: &Row) -> Vec<Param<'_>> {
    row.iter().map(|(_, v)| (v.param(), v.ty())).collect()
}

impl Table {
    pub fn uuid_val(&self, u: Uuid) -> Val {
        if self.uuid_is_uuid_type {
            Val::UuidType(Some(u.to_string()))
        } else {
            Val::Text(Some(u.to_string()))
        }
    }

    fn uuid_match(&self, live: &LiveTable, col: &str, n: usize) -> String {
        if self.uuid_is_uuid_type {
            format!("{} = ${n}::text::uuid", live.q(col))
        } else {
            format!("{} = ${n}", live.q(col))
        }
    }

    /// The pk of the row (current or history) carrying this UUID.
    pub async fn by_uuid(
        &self,
        live: &LiveTable,
        tx: &Transaction<'_>,
        u: Uuid,
    ) -> Result<Option<i64>, tokio_postgres::Error> {
        let Some(col) = self.uuid else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {}::int8 FROM {} WHERE {}",
            live.q_pk(),
            q(self.name),
            self.uuid_match(live, col, 1)
        );
        let u = u.to_string();
        let r = tx.query_typed_opt(&sql, &[(&u, Type::TEXT)]).await?;
        Ok(r.map(|r| r.get(0)))
    }

    /// The current row's pk matching `key` columns (natural key).
    pub async fn current_by(
        &self,
        live: &LiveTable,
        tx: &Transaction<'_>,
        key: &Row,
    ) -> Result<Option<i64>, tokio_postgres::Error> {
        let conds: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(i, (c, v))| format!("{} = {}", live.q(c), v.expr(i + 1)))
            .collect();
        let sql = format!(
            "SELECT {}::int8 FROM {} WHERE {} IS NULL AND {} ORDER BY 1 LIMIT 1",
            live.q_pk(),
            q(self.name),
            live.q(VALIDITY_TO),
            conds.join(" AND ")
        );
        let r = tx.query_typed_opt(&sql, &params(key)).await?;
        Ok(r.map(|r| r.get(0)))
    }

    /// Inserts a current row with pk `key` (drawn or allocated by the caller,
    /// [`super::live::Keys`]). Returns the pk.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert(
        &self,
        live: &LiveTable,
        tx: &Transaction<'_>,
        key: i64,
        uuid: Option<Uuid>,
        row: &Row,
        audit: i32,
        now: DateTime<Utc>,
    ) -> Result<i64, tokio_postgres::Error> {
        let mut full: Row = row.clone();
        if let (Some(col), Some(u)) = (self.uuid, uuid) {
            full.push((col, self.uuid_val(u)));
        }
        full.push((self.audit, Val::I32(Some(audit))));
        full.push((VALIDITY_FROM, Val::Ts(Some(now))));
        full.push((self.pk, Val::I64(Some(key))));
        let cols: Vec<String> = full.iter().map(|(c, _)| live.q(c)).collect();
        let vals: Vec<String> = full
            .iter()
            .enumerate()
            .map(|(i, (_, v))| v.expr(i + 1))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) {}VALUES ({})",
            q(self.name),
            cols.join(", "),
            live.overriding(),
            vals.join(", ")
        );
        tx.execute_typed(&sql, &params(&full)).await?;
        Ok(key)
    }

    /// The history-row convention, in one statement (one round trip): unless the current row
    /// `key` already holds every value of `row` (or, with `skip_if_history_exists`, the
    /// history row `history_uuid` exists: the write was applied before), copy it as a
    /// history row (ValidityTo = now, LegacyID = key, UUID = `history_uuid`, pk
    /// `history_key` or, when None, the table's sequence) and update it in place with `row`,
    /// a new ValidityFrom and the audit user. Returns whether it updated.
    ///
    /// All parts of the statement see the same snapshot, so the copy holds the old values.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_with_history(
        &self,
        live: &LiveTable,
        tx: &Transaction<'_>,
        key: i64,
        history: (Option<i64>, Option<Uuid>),
        skip_if_history_exists: bool,
        row: &Row,
        audit: i32,
        now: DateTime<Utc>,
    ) -> Result<bool, tokio_postgres::Error> {
        let (history_key, history_uuid) = history;
        let t = q(self.name);
        let pk = live.q_pk();
        let mut p: Vec<Param<'_>> = vec![(&key, Type::INT8), (&now, Type::TIMESTAMPTZ)];
        let hist = history_uuid.map(|u| u.to_string());
        let uuid_col = match (self.uuid, hist.as_ref()) {
            (Some(col), Some(h)) => {
                p.push((h, Type::TEXT));
                Some(col)
            }
            _ => None,
        };
        let new_key = match (history_key.as_ref(), live.nextval_expr()) {
            (Some(k), _) => {
                p.push((k, Type::INT8));
                format!("${}::int8", p.len())
            }
            (None, Some(nextval)) => nextval,
            // A table without a sequence whose caller allocated nothing: the database
            // refuses the NULL key, naming it.
            (None, None) => "NULL".into(),
        };
        let off = p.len();
        let expr = |i: usize, v: &Val| v.expr(off + i + 1);
        // The current row, unless there is nothing to do.
        let same: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, (c, v))| format!("{} IS NOT DISTINCT FROM {}", live.q(c), expr(i, v)))
            .collect();
        let mut cur = format!("{pk} = $1 AND NOT ({})", same.join(" AND "));
        if let (Some(col), true) = (uuid_col, skip_if_history_exists) {
            cur.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM {t} WHERE {})",
                self.uuid_match(live, col, 3)
            ));
        }
        // The history copy: the mapped columns, the unmapped ones the database has.
        let mut cols: Vec<String> = self.columns.iter().map(|c| live.q(c.name)).collect();
        cols.extend(self.unmapped.iter().filter_map(|c| live.col(c)).map(q));
        cols.push(live.q(self.audit));
        cols.push(live.q(VALIDITY_FROM));
        let mut dst = cols.clone();
        let mut src = cols;
        dst.push(live.q(VALIDITY_TO));
        src.push("$2".into());
        dst.push(live.q(LEGACY_ID));
        src.push(pk.clone());
        if let Some(col) = uuid_col {
            dst.push(live.q(col));
            src.push(if self.uuid_is_uuid_type {
                "$3::text::uuid".into()
            } else {
                "$3".into()
            });
        }
        dst.push(pk.clone());
        src.push(new_key);
        // The in-place update.
        let mut sets: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, (c, v))| format!("{} = {}", live.q(c), expr(i, v)))
            .collect();
        sets.push(format!(
            "{} = ${}::int4",
            live.q(self.audit),
            off + row.len() + 1
        ));
        sets.push(format!("{} = $2", live.q(VALIDITY_FROM)));
        let sql = format!(
            "WITH cur AS (SELECT * FROM {t} WHERE {cur}), \
             hist AS (INSERT INTO {t} ({}) {}SELECT {} FROM cur) \
             UPDATE {t} SET {} WHERE {pk} = $1 AND EXISTS (SELECT 1 FROM cur)",
            dst.join(", "),
            live.overriding(),
            src.join(", "),
            sets.join(", "),
        );
        p.extend(params(row));
        p.push((&audit, Type::INT4));
        Ok(tx.execute_typed(&sql, &p).await? > 0)
    }
}

/// The UUID of the history row written for the outbox write `seq` of entity `uuid`: stable,
/// so a replayed write finds its history row and is not applied twice.
pub fn history_uuid(uuid: Uuid, seq: u64) -> Uuid {
    let x = uuid.as_u128();
    let hi = mix((x >> 64) as u64 ^ seq);
    let lo = mix(x as u64 ^ mix(seq ^ 0x5eed));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_uuids_are_stable_distinct_per_write_and_valid_v4() {
        let u = Uuid::from_u128(42);
        assert_eq!(history_uuid(u, 7), history_uuid(u, 7));
        assert_ne!(history_uuid(u, 7), history_uuid(u, 8));
        assert_ne!(history_uuid(u, 7), history_uuid(Uuid::from_u128(43), 7));
        assert_eq!(history_uuid(u, 7).get_version_num(), 4);
    }

    #[test]
    fn money_and_uuid_columns_are_cast_and_others_are_plain_parameters() {
        assert_eq!(Val::Money(Some(1)).expr(3), "($3::int8 / 100.0)");
        assert_eq!(Val::UuidType(None).expr(1), "($1::text::uuid)");
        assert_eq!(Val::I32(None).expr(2), "$2::int4");
        assert_eq!(Val::I64(None).expr(4), "$4::int8");
    }
}
