//! The expiry job: Active policies whose ExpiryDate has passed become Expired (status 8).
//!
//! Owns: choosing the policies and flipping their status in small transactions.
//! Must never: touch a policy in any other status (an Idle renewal never paid is left for
//! the central office to judge), or write outside a transaction; the mirror write is queued by
//! the store like any other put.

use std::convert::Infallible;

use chrono::{DateTime, NaiveDate, Utc};

use super::{JobReport, SchedulerError};
use crate::domain::{Id, PolicyStatus};
use crate::store::{Store, TxResult};

/// Policies per transaction: sled transactions are serialized, so keep each one short to let
/// USSD writes in between.
const BATCH: usize = 256;

/// Expires what had expired by the end of the day before `window` (a policy is valid on its
/// expiry date).
pub fn run(
    store: &Store,
    window: NaiveDate,
    now: DateTime<Utc>,
    report: &mut JobReport,
) -> Result<(), SchedulerError> {
    let mut due: Vec<Id> = Vec::new();
    store.for_each_policy(|p| {
        if p.status == PolicyStatus::Active && p.expiry_date < window {
            due.push(p.id);
        }
        Ok(true)
    })?;
    report.examined = due.len() as u64;
    if report.dry_run {
        report.planned = due.iter().map(|id| format!("expire policy {id}")).collect();
        report.changed = due.len() as u64;
        return Ok(());
    }
    for chunk in due.chunks(BATCH) {
        let changed = store.write_at(now, |tx| -> TxResult<u64, Infallible> {
            let mut n = 0;
            for id in chunk {
                // Re-read: a payment or a central change may have moved it since the scan.
                let Some(mut p) = tx.policy(*id)? else {
                    continue;
                };
                if p.status == PolicyStatus::Active && p.expiry_date < window {
                    p.status = PolicyStatus::Expired;
                    tx.put_policy(&p)?;
                    n += 1;
                }
            }
            Ok(n)
        })?;
        report.changed += changed;
    }
    Ok(())
}
