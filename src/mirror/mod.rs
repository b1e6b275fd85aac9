//! The mirror to the central openIMIS PostgreSQL database, both ways.
//!
//! Owns: turning this store's records into openIMIS rows (and back), the mirror writer that
//! drains the outbox topic [`crate::store::MIRROR_TOPIC`] into the central database, the
//! one-off [`import`] (all or nothing) and the incremental [`pull`], the
//! local ↔ central id map ([`idmap`]) and the status shown by `/health` and
//! `imis-gateway mirror status`.
//! Must never: hard-delete a central row, choose a central integer key itself where the
//! database has a sequence for it (a key without one is allocated under a table lock, see
//! [`live`]), name a column the live catalogue does not have, write a row without the history-row convention, or queue a
//! pulled row back onto the mirror (pulled rows go through
//! [`crate::store::Store::write_from_central`]).
//!
//! Rules worth knowing:
//! - **Order**: one writer per store claims the topic in FIFO order and does not claim more
//!   until the claimed batch is acknowledged or dead, so an entity's writes reach the central
//!   database in the order they were committed locally.
//! - **Idempotency**: a replayed write is recognised by UUID: a new entity by its own UUID,
//!   an update by its history row, whose UUID is derived from the entity's UUID and the
//!   write's outbox seq. Tables without a UUID column (tblInsureePolicy, tblFamilySMS,
//!   tblPaymentDetails, tblControlNumber, tblOfficerVillages) are recognised by their natural
//!   key and an update is skipped when the current row already holds the new values.
//!   Batches are guarded as a whole too: the central table [`progress::TABLE`] holds the last
//!   seq committed per store, in the same transaction, so a batch replayed after a crash is
//!   acknowledged without re-applying an entity's older state over a newer one.
//! - **Conflicts** (pull): a central change to an entity that still has an unmirrored local
//!   write is skipped and logged; the local write wins and, once mirrored, the central
//!   change survives as a history row. Otherwise the central row wins.

pub mod catalogue;
pub mod central;
pub mod idmap;
pub mod import;
pub mod live;
pub mod options;
pub mod progress;
pub mod pull;
pub mod rows;
pub mod schema;
pub mod sides;
pub mod spelling;
pub mod sql;
pub mod status;
pub mod tables;
pub mod tls;
pub mod verify;
pub mod writer;

pub use status::MirrorStatus;
pub use writer::{MirrorWriter, WriterOptions};

/// Why a mirror operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Shown with the database's own message: tokio-postgres alone says only "db error".
    #[error("central database: {}", db_detail(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("cannot decode a queued {kind} write: {source}")]
    Decode {
        kind: String,
        #[source]
        source: crate::store::CodecError,
    },
    #[error("unknown entity kind {0:?} on the mirror topic")]
    UnknownKind(String),
    #[error("{kind} {id} references {ref_kind} {ref_id}, which is not in the store")]
    MissingRef {
        kind: &'static str,
        id: u64,
        ref_kind: &'static str,
        ref_id: u64,
    },
    #[error("central row {table} {id}: {reason}")]
    BadCentralRow {
        table: &'static str,
        id: i64,
        reason: String,
    },
    #[error("central row {table} {id}: {column} {value:?}: {source}")]
    CentralValue {
        table: &'static str,
        id: i64,
        column: String,
        value: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The central database lacks something the gateway needs (one line naming the table
    /// and column): the writer does not start.
    #[error("refused: {0}")]
    Refused(String),
    /// The live catalogue of a table the mirror reads could not be read, or lacks a column.
    #[error("central catalogue: {0}")]
    Catalogue(#[from] catalogue::CatalogueError),
    #[error("the store is not empty; import only into an empty store")]
    NotEmpty,
    #[error("TLS to the central database: {0}")]
    TlsConfig(String),
    #[error("TLS to the central database: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
}

/// The database's SQLSTATE and message of a refused statement; the client's own text for
/// anything else (a connection failure, a conversion).
pub fn db_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

impl MirrorError {
    /// Whether the database refused the row itself (a constraint, a type): retrying the same
    /// row cannot succeed, so it goes to the dead letters. Anything else (the connection, a
    /// serialization conflict, a deadlock) is retried.
    pub fn is_rejection(&self) -> bool {
        match self {
            MirrorError::Db(e) => match e.code() {
                Some(code) => {
                    let c = code.code();
                    !(c.starts_with("08") || c == "40001" || c == "40P01" || c.starts_with("57"))
                }
                // No SQLSTATE: either the connection failed (retry) or the client could not
                // convert a value for its column, which fails the same way every time.
                None => is_conversion(e),
            },
            MirrorError::Decode { .. }
            | MirrorError::UnknownKind(_)
            | MirrorError::MissingRef { .. } => true,
            _ => false,
        }
    }
}

/// Whether a client-side error is a value conversion (tokio-postgres has no public kind for
/// it; its message is stable: "error serializing parameter N" / "error deserializing column N").
fn is_conversion(e: &tokio_postgres::Error) -> bool {
    let m = e.to_string();
    m.starts_with("error serializing") || m.starts_with("error deserializing")
}

/// Connects to the central database, driving the connection on a task of its own. TLS is
/// chosen by the DSN's `sslmode` / `sslrootcert`, as with libpq (see [`tls`]).
pub async fn connect(dsn: &str) -> Result<tokio_postgres::Client, MirrorError> {
    let choice = tls::choose(dsn).map_err(MirrorError::TlsConfig)?;
    if choice.mode == tls::Mode::Off {
        let (client, conn) = tokio_postgres::connect(&choice.dsn, tokio_postgres::NoTls).await?;
        tokio::spawn(drive(conn));
        return Ok(client);
    }
    let connector = tls::connector(&choice)?;
    let (client, conn) = tokio_postgres::connect(&choice.dsn, connector).await?;
    tokio::spawn(drive(conn));
    Ok(client)
}

async fn drive<F>(conn: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = conn.await {
        tracing::debug!(error = %db_detail(&e), "central database connection closed");
    }
}
