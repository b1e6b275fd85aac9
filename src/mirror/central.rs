//! What the gateway asks of the central database before it starts mirroring: whether it
//! already holds an openIMIS world.
//!
//! Owns: [`current_families`]. Must never: write.

use tokio_postgres::Client;

use super::MirrorError;

/// Families with a current row (`ValidityTo IS NULL`) in the central `tblFamilies`.
pub async fn current_families(client: &Client) -> Result<i64, MirrorError> {
    let row = client
        .query_one(
            r#"SELECT count(*)::int8 FROM "tblFamilies" WHERE "ValidityTo" IS NULL"#,
            &[],
        )
        .await?;
    Ok(row.get(0))
}
