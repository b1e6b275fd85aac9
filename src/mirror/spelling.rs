//! The pull's SELECTs with the columns of the tables its extras read spelled as the live
//! catalogue spells them.
//!
//! Owns: finding the child tables a description's pull extras read (each written
//! `FROM "tblX" a`, with the child's columns named `a."Column"`), reading their live
//! catalogue once per pull, and rewriting those column names to the database's spelling.
//! The real `tblFamilySMS` was created unquoted, so its columns are lower case
//! (`familyid`); a database created by the Django backend quotes them (`"FamilyID"`): the
//! same extra must read both.
//! Must never: rewrite a name outside an alias it found bound to a child table (the
//! described table's own columns are spelled by its description), or write anywhere.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::catalogue::{read_table, CatalogueError, TableCatalogue};
use super::schema::ALIAS;

/// The child tables an SQL text reads: `(table, alias)` of every `FROM "table" alias`.
pub fn bindings(sql: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find("FROM \"") {
        rest = &rest[at + "FROM \"".len()..];
        let Some(end) = rest.find('"') else { break };
        let table = &rest[..end];
        let after = rest[end + 1..].trim_start();
        let alias: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !alias.is_empty() && !alias.eq_ignore_ascii_case("WHERE") {
            out.push((table.to_string(), alias));
        }
        rest = &rest[end + 1..];
    }
    out
}

/// `sql` with every `alias."Column"` of a bound child table spelled as `spell` says.
/// A name `spell` does not know is left as it is (the database then names it).
pub fn respell(sql: &str, alias: &str, mut spell: impl FnMut(&str) -> Option<String>) -> String {
    let needle = format!("{alias}.\"");
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(&needle) {
        let prev = if at > 0 {
            rest[..at].chars().last()
        } else {
            out.chars().last()
        };
        let bounded = prev.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        out.push_str(&rest[..at + needle.len()]);
        rest = &rest[at + needle.len()..];
        let Some(end) = rest.find('"') else { break };
        let name = &rest[..end];
        match spell(name).filter(|_| bounded) {
            Some(s) => out.push_str(&s.replace('"', "\"\"")),
            None => out.push_str(name),
        }
        out.push('"');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The live catalogues of the child tables read so far (one read per table per pull).
#[derive(Default)]
pub struct Spellings {
    tables: HashMap<String, TableCatalogue>,
}

impl Spellings {
    /// `sql` (a description's SELECT) with its child tables' columns spelled as the
    /// connected database spells them.
    pub async fn apply(&mut self, client: &Client, sql: String) -> Result<String, CatalogueError> {
        let mut sql = sql;
        // The described table itself (aliased `ALIAS`) is spelled by its description.
        let children = bindings(&sql).into_iter().filter(|(_, a)| a != ALIAS);
        for (table, alias) in children {
            if !self.tables.contains_key(&table) {
                let cat = read_table(client, &table).await?;
                self.tables.insert(table.clone(), cat);
            }
            let Some(cat) = self.tables.get(&table) else {
                continue;
            };
            sql = respell(&sql, &alias, |name| {
                cat.spelling(name).ok().map(str::to_string)
            });
        }
        Ok(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMS: &str = r#"SELECT s."ApprovalOfSMS" FROM "tblFamilySMS" s
        WHERE s."FamilyID" = t."FamilyID" AND s."ValidityTo" IS NULL"#;

    #[test]
    fn finds_the_child_tables_and_their_aliases() {
        assert_eq!(
            bindings(SMS),
            [("tblFamilySMS".to_string(), "s".to_string())]
        );
        let main =
            r#"SELECT x FROM "tblFamilies" t WHERE ("a") AND (SELECT 1 FROM "tblControlNumber" c)"#;
        assert_eq!(
            bindings(main),
            [
                ("tblFamilies".to_string(), "t".to_string()),
                ("tblControlNumber".to_string(), "c".to_string())
            ]
        );
        assert!(bindings(r#"SELECT 1 FROM "tblX" WHERE true"#).is_empty());
    }

    #[test]
    fn respells_only_the_aliased_child_columns() {
        let lower = |n: &str| Some(n.to_ascii_lowercase());
        assert_eq!(
            respell(SMS, "s", lower),
            r#"SELECT s."approvalofsms" FROM "tblFamilySMS" s
        WHERE s."familyid" = t."FamilyID" AND s."validityto" IS NULL"#
        );
        // An alias that is the tail of another identifier is not the child's.
        assert_eq!(
            respell(r#"xs."A" + s."A""#, "s", lower),
            r#"xs."A" + s."a""#
        );
        // Unknown names are left for the database to name.
        assert_eq!(respell(r#"s."Nope""#, "s", |_| None), r#"s."Nope""#);
    }
}
