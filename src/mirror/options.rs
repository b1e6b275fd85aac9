//! The mirror writer's tuning, from `[mirror]`.
//!
//! Owns: [`WriterOptions`] and its defaults.
//! Must never: read anything but the configuration it is given.

use std::time::Duration;

/// Tuning of the writer (from `[mirror]`).
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub batch_size: usize,
    /// Lease of a claimed batch; a restarted writer first waits this long so that a crashed
    /// predecessor's batch is claimable again, in order.
    pub lease: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How often an idle writer looks for new writes.
    pub poll: Duration,
    /// `AuditUserID` of mirrored rows (payment tables always use −1, system).
    pub audit_user_id: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_size: 200,
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            poll: Duration::from_millis(200),
            audit_user_id: -3,
        }
    }
}

impl WriterOptions {
    /// The writer's options from `[mirror]`.
    pub fn from_config(c: &crate::config::MirrorConfig) -> WriterOptions {
        WriterOptions {
            batch_size: c.batch_size.max(1),
            lease: Duration::from_secs(c.lease_secs),
            backoff_base: Duration::from_millis(c.backoff_base_ms),
            backoff_cap: Duration::from_secs(c.backoff_cap_secs),
            audit_user_id: c.audit_user_id,
            ..WriterOptions::default()
        }
    }
}
