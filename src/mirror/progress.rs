//! Replay guard of the mirror writer: the highest outbox seq whose write is committed in
//! the central database, kept in that database, in the same transaction as the rows.
//!
//! Owns: this store's node id (a UUID made on first use and kept durably in the store) and
//! the bookkeeping table [`TABLE`] (`node` → `last_seq`), created if missing.
//! Why: after a kill -9 between the PostgreSQL commit and the durable acks, the same batch
//! is claimed again. Recognising each replayed row is not enough: a batch holding an
//! entity's insert and a later update would re-apply the insert's (older) state over the
//! newer row. One writer claims the topic in seq order, and store transactions commit in seq
//! order (sled 0.34 holds its global transaction lock from before the closure, where the seq
//! is drawn, until the commit), so "seq ≤ last_seq" means "already in the central database".
//! A store restored from an older backup draws seqs below its `last_seq` again: delete its
//! row (`DELETE FROM imis_gateway_mirror_progress WHERE node = '<id>'`) before restarting;
//! the writer logs every write it skips as already applied.
//! Must never: advance `last_seq` outside the transaction that wrote the rows, or share a
//! node id between two stores.

use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::MirrorError;
use crate::store::Store;

/// Not an openIMIS table: the gateway's own, one row per mirroring store.
pub const TABLE: &str = "imis_gateway_mirror_progress";
const NODE_NS: &str = "mirror.node";
const NODE_KEY: &[u8] = b"id";

/// This store's node id; made, stored and flushed on first use.
pub async fn node_id(store: &Store) -> Result<Uuid, MirrorError> {
    if let Some(id) = read_node(store)? {
        return Ok(id);
    }
    let fresh = Uuid::new_v4();
    // Compare-and-swap: two first callers agree on one id.
    store.aux_compare_and_swap(NODE_NS, NODE_KEY, None, Some(fresh.as_bytes()))?;
    store.flushed().await?;
    read_node(store)?
        .ok_or_else(|| MirrorError::Store(crate::store::StoreError::CorruptKey { tree: "aux" }))
}

fn read_node(store: &Store) -> Result<Option<Uuid>, MirrorError> {
    Ok(store
        .aux_get(NODE_NS, NODE_KEY)?
        .and_then(|b| Uuid::from_slice(&b).ok()))
}

/// Creates the table when missing (a race with another store creating it is fine).
pub async fn ensure_table(client: &Client) -> Result<(), MirrorError> {
    // Looked up first: a gateway login without CREATE on the schema may use a table the
    // administrator made (README: the database rights), and CREATE ... IF NOT EXISTS would
    // still be refused it.
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])
        .await?
        .get(0);
    if exists {
        return Ok(());
    }
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (node text PRIMARY KEY, last_seq bigint NOT NULL, \
         updated timestamptz NOT NULL DEFAULT now())"
    );
    match client.batch_execute(&ddl).await {
        Ok(()) => Ok(()),
        Err(e) => match e.code().map(|c| c.code()) {
            // unique_violation / duplicate_table: someone else created it just now.
            Some("23505") | Some("42P07") => Ok(()),
            _ => Err(e.into()),
        },
    }
}

/// The last seq applied for `node`, locking its row until the transaction ends (a second
/// writer on the same store, which must not exist, would wait rather than interleave).
pub async fn applied_upto(tx: &Transaction<'_>, node: Uuid) -> Result<u64, MirrorError> {
    let q = format!("SELECT last_seq FROM {TABLE} WHERE node = $1 FOR UPDATE");
    let row = tx.query_opt(&q, &[&node.to_string()]).await?;
    Ok(row
        .map(|r| r.get::<_, i64>(0))
        .map(|s| u64::try_from(s).unwrap_or(0))
        .unwrap_or(0))
}

/// Records that every write up to `seq` is in this transaction or before it.
pub async fn advance(tx: &Transaction<'_>, node: Uuid, seq: u64) -> Result<(), MirrorError> {
    let q = format!(
        "INSERT INTO {TABLE} (node, last_seq) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE \
         SET last_seq = GREATEST({TABLE}.last_seq, EXCLUDED.last_seq), updated = now()"
    );
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    tx.execute(&q, &[&node.to_string(), &seq]).await?;
    Ok(())
}
