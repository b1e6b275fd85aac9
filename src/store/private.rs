//! The data directory is private to the gateway's user: directories 0700, files 0600.
//!
//! Owns: creating the data directory with mode 0700 before sled does (sled would create it
//! 0755), and narrowing what an older or hand-made store left wider. Files sled creates
//! afterwards (snapshots, blobs) stay private through the process umask that `main` sets.
//! Must never: widen a permission, or follow a symlink out of the data directory.
//!
//! Why: the store holds phone numbers, names and payment records; on a shared host a 0644
//! file is readable by every local user.

use std::path::Path;

/// Creates `dir` (and missing parents) owner-only if it does not exist yet.
pub(crate) fn prepare(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Narrows `dir` to 0700 and everything under it to 0700 (directories) / 0600 (files).
pub(crate) fn restrict(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(dir)?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.permissions().mode() & 0o777 & !mode != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(dir)? {
                restrict(&entry?.path())?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_owner_only_and_narrows_what_is_wider() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::create_dir(dir.join("blobs")).unwrap();
        std::fs::write(dir.join("db"), b"x").unwrap();
        std::fs::write(dir.join("blobs/1"), b"x").unwrap();
        for p in ["db", "blobs/1"] {
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(dir.join("db"), std::fs::Permissions::from_mode(0o400)).unwrap();
        restrict(&dir).unwrap();
        assert_eq!(mode(&dir.join("blobs")), 0o700);
        assert_eq!(mode(&dir.join("blobs/1")), 0o600);
        assert_eq!(mode(&dir.join("db")), 0o400, "never widened");
    }
}
