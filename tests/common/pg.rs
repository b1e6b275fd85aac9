//! A real, throwaway PostgreSQL for the mirror tests: `initdb` into a temp dir (as the
//! `postgres` user when running as root: initdb refuses root), started on a free loopback
//! port with its unix socket in that dir, the REAL openIMIS schema created in its `postgres`
//! database (upstream's scripts, tests/third_party/openimis-db/, without demo data: see
//! [`super::openimis_db`]), stopped and deleted on drop. Absent PostgreSQL is a test failure, not a skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn find_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    if let Some(d) = dirs.into_iter().rev().find(|d| d.join("initdb").exists()) {
        return d;
    }
    for p in std::env::var("PATH").unwrap_or_default().split(':') {
        if Path::new(p).join("initdb").exists() && Path::new(p).join("pg_ctl").exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): \
         the mirror tests need a real PostgreSQL; install it (apt-get install -y postgresql, \
         as .ci/run does)"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Pg {
    /// initdb + start + the real openIMIS schema (empty) in database `postgres`.
    pub fn start() -> Pg {
        let pg = Pg::start_bare();
        super::openimis_db::load_schema(&pg, "postgres");
        pg
    }

    /// initdb + start, with no schema (the real openIMIS scripts load into databases of
    /// their own: tests/common/openimis_db.rs).
    pub fn start_bare() -> Pg {
        let bin = find_bin();
        let dir = tempfile::Builder::new()
            .prefix("imis-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the PostgreSQL temp dir to postgres");
        }
        let pg = Pg {
            dir,
            bin,
            port: free_port(),
        };
        let out = pg
            .as_postgres("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(pg.data())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    /// The directory of the PostgreSQL tools this cluster runs (`pg_dump`, `pg_restore`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Starts (or restarts after [`Pg::stop`]) the server on the same port and data.
    pub fn start_server(&self) {
        // fsync=off only skips the flush to disk; commits still reach the OS before they are
        // acknowledged, so they survive the immediate stop of [`Pg::stop`] (which is a
        // PostgreSQL crash, not a machine crash). synchronous_commit=off would lose them.
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .as_postgres("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &opts, "start"])
            .output()
            .expect("run pg_ctl start");
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (connections are cut), keeping the data.
    pub fn stop(&self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }

    /// Turns TLS on with a fresh self-signed certificate for `localhost` (made with the
    /// `openssl` tool); returns the certificate's path, to trust as a root.
    pub fn enable_tls(&self) -> PathBuf {
        let data = self.data();
        let (crt, key) = (data.join("server.crt"), data.join("server.key"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&crt)
                .arg(&key)
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the TLS files to postgres");
        }
        // PostgreSQL refuses a private key others can read.
        let ok = Command::new("chmod")
            .arg("600")
            .arg(&key)
            .status()
            .expect("chmod")
            .success();
        assert!(ok, "chmod 600 server.key");
        self.query("ALTER SYSTEM SET ssl = on");
        self.query("SELECT pg_reload_conf()");
        crt
    }

    pub fn dsn(&self) -> String {
        self.dsn_of("postgres")
    }

    /// The DSN of database `db` of this cluster.
    pub fn dsn_of(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=5",
            self.port
        )
    }

    /// Runs `file` in database `db` with `psql -v ON_ERROR_STOP=1` (no `-q`: what psql
    /// prints is returned to be checked); the output on success, psql's own words otherwise.
    pub fn try_psql_file_in(&self, db: &str, file: &Path) -> Result<std::process::Output, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-p", &self.port.to_string(), "-f"])
            .arg(file)
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "psql -d {db} -f {} failed ({}): {}",
                file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn psql_file(&self, file: &Path) {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q"])
            .args(["-v", "ON_ERROR_STOP=1", "-p", &self.port.to_string(), "-f"])
            .arg(file)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL and returns psql's unaligned, tuples-only output (`|`-separated).
    pub fn query(&self, sql: &str) -> String {
        self.query_in("postgres", sql)
    }

    /// [`Pg::query`] in database `db`.
    pub fn query_in(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAt"])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-p",
                &self.port.to_string(),
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -d {db} -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
    }
}
