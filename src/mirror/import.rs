//! The one-off import: every current central row into a new store, all or nothing.
//!
//! Owns: streaming the current rows (`ValidityTo IS NULL`) of every table the pull reads
//! into an empty store ([`import`]; the SELECT and the mapping are each table's
//! description, in [`super::tables`]), the counts of what our own input rules would have
//! flagged ([`Flagged`]), and the all-or-nothing load into a data directory
//! ([`into_dir`]).
//! Must never: reject a central record for our own input rules (a CHFID's check digit, a
//! phone number's format, a name): openIMIS accepted it, so it is kept as it is and
//! counted; leave a half-filled store behind; or write to the central database.
//!
//! **All or nothing**: [`into_dir`] builds the store in a sibling staging directory
//! (`DIR.importing`) and renames it into place only once every table is loaded and
//! flushed. A failure (a row that cannot be decoded, the connection, the disk) removes
//! the staging directory and leaves `DIR` as it was, so a rerun starts afresh; a staging
//! directory left by a killed import is removed by the next run. An existing `DIR` must
//! hold an empty store (no records, nothing queued); it is replaced as a whole.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, Row as PgRow};

use super::idmap::{self, LocalIds};
use super::rows::Entity;
use super::schema::{Named, Select};
use super::spelling::Spellings;
use super::{pull, tables, MirrorError};
use crate::domain::{ChfidRule, Msisdn};
use crate::store::{Store, StoreError, StoreOptions};

/// What an import loaded, per table.
pub type ImportCounts = Vec<(&'static str, u64)>;

/// Central values our own input rules would have refused from a person, kept as they are
/// by the import (openIMIS accepted them) and counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flagged {
    /// Insurance numbers our CHFID rule would refuse (format or check digit).
    pub chfid: u64,
    /// Phone numbers that are not a phone number we could send to (the store keeps none).
    pub phone: u64,
    /// Names we would not accept typed: empty, or not words of letters.
    pub names: u64,
    /// The rule typed CHFIDs are held to (`[domain]`), which central ones are counted by.
    pub rule: ChfidRule,
}

impl Flagged {
    /// Counts a central insurance number our rule would refuse.
    pub fn chfid(&mut self, s: &str) {
        self.chfid += u64::from(self.rule.flags(s).is_some());
    }

    /// Counts a central phone number that is neither empty nor one we can parse.
    pub fn phone(&mut self, s: Option<&str>) {
        self.phone += u64::from(phone_flagged(s));
    }

    /// Counts a central name we would not accept typed.
    pub fn name(&mut self, s: Option<&str>) {
        self.names += u64::from(!name_acceptable(s.unwrap_or("")));
    }

    /// Every count, named, for printing.
    pub fn named(&self) -> [(&'static str, u64); 3] {
        [
            ("CHFID", self.chfid),
            ("phone", self.phone),
            ("names", self.names),
        ]
    }
}

/// Whether a central phone number is neither empty (no phone) nor one we can parse.
pub fn phone_flagged(s: Option<&str>) -> bool {
    s.is_some_and(|p| !p.trim().is_empty() && Msisdn::parse(p).is_err())
}

/// Whether we would accept name `s` typed by a person: one or more words of letters (with
/// `'`, `-` and `.` inside them), at most 100 characters.
pub fn name_acceptable(s: &str) -> bool {
    let mut words = s.split_whitespace().peekable();
    words.peek().is_some()
        && s.chars().count() <= 100
        && words.all(|w| {
            w.chars().any(char::is_alphabetic)
                && w.chars()
                    .all(|c| c.is_alphabetic() || matches!(c, '\'' | '-' | '.'))
        })
}

/// What an import loaded, and what it would have flagged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub counts: ImportCounts,
    pub flagged: Flagged,
}

/// Loads the current central rows into an empty store, streaming in chunks. `progress` is
/// called every chunk with (table, rows so far). Not atomic on its own (see [`into_dir`]).
pub async fn import(
    client: &Client,
    store: &Store,
    progress: impl FnMut(&str, u64),
) -> Result<ImportCounts, MirrorError> {
    Ok(
        import_flagged(client, store, ChfidRule::default(), progress)
            .await?
            .counts,
    )
}

/// [`import`], with the counts of what our input rules would have flagged.
pub async fn import_flagged(
    client: &Client,
    store: &Store,
    rule: ChfidRule,
    mut progress: impl FnMut(&str, u64),
) -> Result<Imported, MirrorError> {
    if !is_empty(store)? {
        return Err(MirrorError::NotEmpty);
    }
    let mut ids = LocalIds::deferred(store);
    let mut spellings = Spellings::default();
    let mut out = Imported::default();
    out.flagged.rule = rule;
    let started = client
        .query_one("SELECT now()", &[])
        .await?
        .get::<_, DateTime<Utc>>(0);
    for q in pull::pulled() {
        let table = q.table.name;
        let sql = spellings.apply(client, q.select(Select::Pull)).await?;
        let stream = client.query_raw(&sql, std::iter::empty::<i32>()).await?;
        let flagged = &mut out.flagged;
        let n = stream_chunks(
            stream,
            |rows| -> Result<(), MirrorError> {
                let mut chunk = Vec::with_capacity(rows.len());
                for r in rows {
                    let named = Named::new(r, &q.table)?;
                    tables::flag(q, &named, flagged)?;
                    let e = Entity::read(q, &named, &mut ids)?
                        .ok_or_else(|| MirrorError::UnknownKind(q.kind.to_string()))?;
                    chunk.push(e);
                }
                let new = ids.take_new();
                store.bulk(|b| -> Result<(), StoreError> {
                    for (kind, local, central) in &new {
                        idmap::put_bulk(b, kind, *local, *central)?;
                    }
                    chunk.iter().try_for_each(|p| put_bulk(b, p))
                })??;
                Ok(())
            },
            |n| progress(table, n),
        )
        .await?;
        out.counts.push((table, n));
        pull::watermark_set(store, table, started)?;
    }
    store.flush()?;
    Ok(out)
}

/// Whether a store holds no record and nothing queued (what an import may load into).
fn is_empty(store: &Store) -> Result<bool, StoreError> {
    let c = store.counts()?;
    Ok([
        c.locations,
        c.products,
        c.officers,
        c.families,
        c.insurees,
        c.policies,
        c.insuree_policies,
        c.premiums,
        c.payments,
        c.control_numbers,
        c.outbox_pending,
        c.outbox_dead,
    ]
    .iter()
    .all(|n| *n == 0))
}

fn put_bulk(b: &mut crate::store::BulkWriter<'_>, p: &Entity) -> Result<(), StoreError> {
    match p {
        Entity::Location(r) => b.put_location(r),
        Entity::Product(r) => b.put_product(r),
        Entity::Officer(r) => b.put_officer(r),
        Entity::Family(r) => b.put_family(r),
        Entity::Insuree(r) => b.put_insuree(r),
        Entity::Policy(r) => b.put_policy(r),
        Entity::InsureePolicy(r) => b.put_insuree_policy(r),
        Entity::Premium(r) => b.put_premium(r),
        Entity::Payment(r) => b.put_payment(r),
        Entity::ControlNumber(r) => b.put_control_number(r),
    }
}

/// Rows per import chunk: each chunk is one bulk load, which ends with a flush of the store,
/// so chunks are large (a few MB of records) to keep flushes rare.
const CHUNK: usize = 25_000;

/// Drives a row stream in chunks of [`CHUNK`] rows; returns the row count.
async fn stream_chunks(
    stream: tokio_postgres::RowStream,
    mut each: impl FnMut(&[PgRow]) -> Result<(), MirrorError>,
    mut progress: impl FnMut(u64),
) -> Result<u64, MirrorError> {
    use futures_util::TryStreamExt;
    let mut stream = std::pin::pin!(stream);
    let mut buf = Vec::with_capacity(CHUNK);
    let mut n = 0u64;
    while let Some(row) = stream.try_next().await? {
        buf.push(row);
        if buf.len() == CHUNK {
            each(&buf)?;
            n += buf.len() as u64;
            buf.clear();
            progress(n);
        }
    }
    if !buf.is_empty() {
        each(&buf)?;
        n += buf.len() as u64;
        progress(n);
    }
    Ok(n)
}

/// Why an import into a data directory failed; the directory is as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// Replacing it would lose files that are not the store's.
    #[error("{} holds files other than a store's; import into an absent or empty directory, or an empty store", .0.display())]
    NotAStore(PathBuf),
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> ImportError {
        ImportError::Mirror(e.into())
    }
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> ImportError + 'p {
    move |source| ImportError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// `DIR.tag` next to `dir`.
fn sibling(dir: &Path, tag: &str) -> Result<PathBuf, ImportError> {
    let abs = std::path::absolute(dir).map_err(io("resolving", dir))?;
    let name = abs.file_name().ok_or_else(|| ImportError::Io {
        what: "no directory name in",
        path: dir.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let mut name = name.to_os_string();
    name.push(format!(".{tag}"));
    Ok(abs.with_file_name(name))
}

/// Removes a directory left by an earlier import, refusing one a live import holds (its
/// store is locked).
fn remove_leftover(dir: &Path, options: &StoreOptions) -> Result<(), ImportError> {
    if !dir.exists() {
        return Ok(());
    }
    drop(Store::open(dir, options.clone())?);
    std::fs::remove_dir_all(dir).map_err(io("removing", dir))
}

/// Whether a directory entry is one the store (sled) makes: `conf`, `db`, `blobs`,
/// `snap.*`.
fn is_store_entry(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    matches!(n.as_ref(), "conf" | "db" | "blobs") || n.starts_with("snap.")
}

/// Whether `dir` may receive an import: absent, an empty directory, or an empty store
/// (nothing else in it, since it is replaced as a whole).
fn check_target(dir: &Path, options: &StoreOptions) -> Result<(), ImportError> {
    if !dir.exists() {
        return Ok(());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
        names.push(entry.map_err(io("reading", dir))?.file_name());
    }
    if names.is_empty() {
        return Ok(());
    }
    if !names.iter().all(|n| is_store_entry(n)) {
        return Err(ImportError::NotAStore(dir.to_path_buf()));
    }
    let store = Store::open(dir, options.clone())?;
    if !is_empty(&store)? {
        return Err(MirrorError::NotEmpty.into());
    }
    Ok(())
}

/// Imports the central database into a new store at `dir`, all or nothing (see the module
/// doc): on any failure `dir` is as it was.
pub async fn into_dir(
    client: &Client,
    dir: &Path,
    options: StoreOptions,
    rule: ChfidRule,
    progress: impl FnMut(&str, u64),
) -> Result<Imported, ImportError> {
    check_target(dir, &options)?;
    let staging = sibling(dir, "importing")?;
    let replaced = sibling(dir, "replaced")?;
    remove_leftover(&staging, &options)?;
    remove_leftover(&replaced, &options)?;
    let loaded = {
        let store = Store::open(&staging, options)?;
        import_flagged(client, &store, rule, progress).await
    };
    let imported = match loaded {
        Ok(i) => i,
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(&staging) {
                tracing::warn!(dir = %staging.display(), error = %rm, "import failed; its staging directory is removed by the next run");
            }
            return Err(e.into());
        }
    };
    if dir.exists() {
        std::fs::rename(dir, &replaced).map_err(io("moving aside", dir))?;
        std::fs::rename(&staging, dir).map_err(io("moving into place", &staging))?;
        std::fs::remove_dir_all(&replaced).map_err(io("removing", &replaced))?;
    } else {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        std::fs::rename(&staging, dir).map_err(io("moving into place", &staging))?;
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules_flag_but_never_refuse_central_values() {
        // The real demo's CHFIDs: most fail our check digit, some have 8 digits.
        let mut f = Flagged::default();
        for c in ["070707070", "111111119", "13000001"] {
            f.chfid(c);
        }
        assert_eq!(f.chfid, 2);
        // Under a rule without a check, only the 8-digit one is flagged.
        let mut f = Flagged {
            rule: ChfidRule {
                length: 9,
                check: crate::domain::ChfidCheck::None,
            },
            ..Flagged::default()
        };
        for c in ["070707070", "111111119", "13000001"] {
            f.chfid(c);
        }
        assert_eq!(f.chfid, 1);
        // No phone is not a bad phone; a local number is fine.
        assert!(!phone_flagged(None));
        assert!(!phone_flagged(Some("")));
        assert!(!phone_flagged(Some("  ")));
        assert!(!phone_flagged(Some("0712345678")));
        assert!(phone_flagged(Some("abc@abc.com")));
        assert!(phone_flagged(Some("12")));
        assert!(name_acceptable("Macintyre"));
        assert!(name_acceptable("O'Neil Mary-Jane"));
        assert!(!name_acceptable(""));
        assert!(!name_acceptable("   "));
        assert!(!name_acceptable("J0hn"));
        assert!(!name_acceptable(&"a".repeat(101)));
        let mut f = Flagged::default();
        f.chfid("111111119");
        f.phone(Some("x"));
        f.name(None);
        f.name(Some("Jet"));
        assert_eq!(
            f,
            Flagged {
                chfid: 1,
                phone: 1,
                names: 1,
                rule: ChfidRule::default(),
            }
        );
    }

    #[test]
    fn staging_directories_sit_next_to_the_data_directory() {
        let s = sibling(Path::new("/var/lib/imis/data"), "importing").unwrap();
        assert_eq!(s, Path::new("/var/lib/imis/data.importing"));
        assert!(sibling(Path::new("/"), "importing").is_err());
        for ours in ["conf", "db", "blobs", "snap.00000000000123AB"] {
            assert!(is_store_entry(std::ffi::OsStr::new(ours)), "{ours}");
        }
        for theirs in ["notes.txt", "db.bak", "config.toml"] {
            assert!(!is_store_entry(std::ffi::OsStr::new(theirs)), "{theirs}");
        }
    }
}
