//! Issue 14: the data directory is private: `serve` and the store commands create it 0700
//! and every file in it 0600 (sled's included), and narrow a store left wider before.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every path under `dir` (itself included) whose mode lets anyone but the owner in.
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let mode = std::fs::symlink_metadata(dir).unwrap().permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bad.push(format!("{} {mode:o}", dir.display()));
    }
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            bad.extend(open_to_others(&e.unwrap().path()));
        }
    }
    bad
}

#[test]
fn serve_and_the_commands_keep_the_data_directory_private() {
    let t = tempfile::tempdir().unwrap();
    // serve creates the data directory itself.
    let data = t.path().join("data");
    let server = common::Server::start(&data, &[], &[]);
    // Let start-up finish (the store opened, the signal handler in place) before SIGTERM.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (st, logs) = server.terminate();
    assert!(st.success(), "{st:?}\n{}", logs.join("\n"));
    assert!(data.join("db").exists(), "sled's files are there");
    assert_eq!(open_to_others(&data), Vec::<String>::new());

    // A store left world-readable (an older gateway) is narrowed by the next command.
    for p in [data.clone(), data.join("db"), data.join("conf")] {
        let m = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let out = common::run(&["jobs", "list", "--data-dir", data.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(open_to_others(&data), Vec::<String>::new());

    // demo-data into a new directory.
    let demo = t.path().join("demo");
    let out = common::run(
        &[
            "demo-data",
            "--families",
            "5",
            "--data-dir",
            demo.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(open_to_others(&demo), Vec::<String>::new());
}
