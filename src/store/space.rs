//! The disk-space guard: refuses new writes with [`StoreError::DiskFull`] while the data
//! directory's filesystem has less than `min_free_bytes` free, and lets them through again,
//! without a restart, as soon as space returns.
//!
//! Why before sled sees the disk full: sled 0.34 keeps the first I/O error of a flush as a
//! global error of the whole database, and every later call (reads included) returns it
//! until the database is reopened. Refusing at the door keeps sled healthy, so recovery is
//! just "space is back". If the disk fills faster than the guard sees (another process takes
//! the last bytes while sled flushes), sled is poisoned: the guard then records it and keeps
//! answering `DiskFull { restart_required: true }`, and `/health` says a restart is needed.
//!
//! Owns: the statvfs check, the low-space and poisoned states, and the one error-level log
//! line per transition ("disk full" with the path). Must never: block (statvfs is a cheap
//! metadata call), or refuse anything on a store without a directory (temporary stores).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::StoreError;

/// What `/health` shows about the data directory's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskStatus {
    /// `"ok"`, `"full"` (writes refused until space returns) or `"failed"` (sled hit the
    /// full disk: writes refused until the server is restarted).
    pub state: &'static str,
    pub path: String,
    pub free_bytes: u64,
    pub min_free_bytes: u64,
    pub restart_required: bool,
}

pub(crate) struct SpaceGuard {
    dir: Option<PathBuf>,
    min_free: u64,
    /// Below `min_free` at the last check.
    low: AtomicBool,
    /// sled returned ENOSPC: its global error is set for good.
    poisoned: AtomicBool,
}

/// Whether an I/O error is the disk being full (ENOSPC, or EDQUOT for a quota).
pub fn io_is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull) || e.raw_os_error() == Some(122)
}

/// Whether a sled error is the disk being full.
pub fn sled_is_disk_full(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io_is_disk_full(io))
}

impl SpaceGuard {
    pub(crate) fn new(dir: Option<&Path>, min_free: u64) -> SpaceGuard {
        SpaceGuard {
            dir: dir.map(Path::to_path_buf),
            min_free,
            low: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
        }
    }

    fn path(&self) -> String {
        self.dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    }

    /// Re-reads the free space; logs the transitions.
    fn refresh(&self) -> u64 {
        let Some(dir) = &self.dir else {
            return u64::MAX;
        };
        // A failed statvfs is not evidence of a full disk: let sled decide.
        let free = fs2::available_space(dir).unwrap_or(u64::MAX);
        let low = free < self.min_free;
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(path = %dir.display(), free_bytes = free, min_free_bytes = self.min_free,
                    "disk full: refusing new work until space is freed on the data directory");
            } else {
                tracing::info!(path = %dir.display(), free_bytes = free, "disk space back: accepting work again");
            }
        }
        free
    }

    /// `Ok` if a write may go to sled now.
    pub(crate) fn admit(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::Relaxed) {
            self.refresh();
            return Err(self.error(true));
        }
        if self.dir.is_some() && self.refresh() < self.min_free {
            return Err(self.error(false));
        }
        Ok(())
    }

    fn error(&self, restart_required: bool) -> StoreError {
        StoreError::DiskFull {
            path: self.path(),
            restart_required,
        }
    }

    /// Records that sled failed on a full disk (it is poisoned from now on); logs once.
    pub(crate) fn sled_failed(&self, e: &sled::Error) {
        if sled_is_disk_full(e) && !self.poisoned.swap(true, Ordering::Relaxed) {
            tracing::error!(path = %self.path(), error = %e,
                "disk full: the store failed to write and refuses every write until the server is restarted");
        }
    }

    /// Maps a sled-level failure to [`StoreError::DiskFull`] when it is the disk.
    pub(crate) fn map(&self, e: StoreError) -> StoreError {
        match &e {
            StoreError::Sled(s) if sled_is_disk_full(s) => {
                self.sled_failed(s);
                self.error(true)
            }
            StoreError::Flush(s) if sled_is_disk_full(s) => {
                self.sled_failed(s);
                self.error(true)
            }
            _ => e,
        }
    }

    pub(crate) fn status(&self) -> DiskStatus {
        let free = self.refresh();
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        DiskStatus {
            state: if poisoned {
                "failed"
            } else if free < self.min_free {
                "full"
            } else {
                "ok"
            },
            path: self.path(),
            free_bytes: free,
            min_free_bytes: self.min_free,
            restart_required: poisoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_without_a_directory_admits_everything() {
        let g = SpaceGuard::new(None, u64::MAX);
        assert!(g.admit().is_ok());
        assert_eq!(g.status().state, "ok");
    }

    #[test]
    fn below_the_minimum_writes_are_refused_as_disk_full_and_admitted_again_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let g = SpaceGuard::new(Some(dir.path()), u64::MAX);
        let e = g.admit().unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(g.status().state, "full");
        let g = SpaceGuard::new(Some(dir.path()), 0);
        assert!(g.admit().is_ok());
    }

    #[test]
    fn an_enospc_from_sled_poisons_the_guard_until_restart() {
        let dir = tempfile::tempdir().unwrap();
        let g = SpaceGuard::new(Some(dir.path()), 0);
        let enospc = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        let mapped = g.map(StoreError::Sled(enospc));
        assert!(matches!(
            mapped,
            StoreError::DiskFull {
                restart_required: true,
                ..
            }
        ));
        assert!(g.admit().unwrap_err().is_disk_full());
        assert!(g.status().restart_required);
        // Another error passes through unchanged.
        assert!(!g.map(StoreError::Closed).is_disk_full());
    }
}
