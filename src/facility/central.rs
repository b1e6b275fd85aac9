//! The facilities the central openIMIS database holds: `tblHF`'s current rows, read into
//! this store's facility registry (`imis-gateway facility import --from DSN`).
//!
//! Owns: the one query and the mapping of a row to a [`Facility`]. Must never: write to the
//! central database, or drop a registered staff phone (facilities are added or replaced by
//! HF code; staff phones stay as the administrator set them).

use super::registry::{self, Facility};
use super::FacilityError;
use crate::store::Store;

/// `tblHF`'s current rows (`ValidityTo IS NULL`), by HF code.
const QUERY: &str = r#"SELECT "HFCode", "HFName", "HFLevel", "HFCareType" FROM "tblHF"
    WHERE "ValidityTo" IS NULL ORDER BY "HFCode""#;

/// Reads every current facility of the central database into `store`; returns how many.
pub async fn import(
    client: &tokio_postgres::Client,
    store: &Store,
) -> Result<usize, FacilityError> {
    let rows = client
        .query(QUERY, &[])
        .await
        .map_err(|e| FacilityError::Central(e.to_string()))?;
    let first = |s: Option<String>, default: char| {
        s.and_then(|s| s.trim().chars().next())
            .map_or(default, |c| c.to_ascii_uppercase())
    };
    let mut n = 0;
    for row in rows {
        let code: String = row
            .try_get(0)
            .map_err(|e| FacilityError::Central(e.to_string()))?;
        let name: Option<String> = row.try_get(1).unwrap_or_default();
        let f = Facility {
            code: code.trim().to_string(),
            name: name.unwrap_or_default().trim().to_string(),
            level: first(row.try_get(2).unwrap_or_default(), 'D'),
            care_type: first(row.try_get(3).unwrap_or_default(), 'B'),
        };
        registry::put_facility(store, &f)?;
        n += 1;
    }
    tracing::info!(facilities = n, "facilities imported from tblHF");
    Ok(n)
}
