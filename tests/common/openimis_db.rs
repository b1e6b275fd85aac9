//! The real openIMIS database (tests/third_party/openimis-db/, upstream's scripts unmodified) in a
//! throwaway cluster ([`super::pg::Pg::start_bare`]): databases created from templates
//! loaded once per cluster, so a test that needs several fresh databases loads the scripts
//! once.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::pg::Pg;

/// The schema scripts in upstream's load order (its Dockerfile and concatenate_files.sh:
/// `00_dump.sql 0[2345]_*.sql`, then `demo_db.sql` for the demo data).
pub const SCHEMA_SCRIPTS: [&str; 5] = [
    "00_dump.sql",
    "02_aux_functions.sql",
    "03_views.sql",
    "04_functions.sql",
    "05_stored_procs.sql",
];
pub const DEMO_SCRIPT: &str = "demo_db.sql";

/// With the demo data or the empty schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    Empty,
    Demo,
}

impl Data {
    fn template(self) -> &'static str {
        match self {
            Data::Empty => "openimis_template_empty",
            Data::Demo => "openimis_template_demo",
        }
    }
}

pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/third_party/openimis-db")
}

/// Loads the schema scripts (the empty openIMIS schema, as [`Data::Empty`]) into database
/// `db` of `pg`, in upstream's order. Panics with psql's words on an error.
pub fn load_schema(pg: &Pg, db: &str) {
    for script in SCHEMA_SCRIPTS {
        if let Err(e) = pg.try_psql_file_in(db, &scripts_dir().join(script)) {
            panic!("loading the real openIMIS script {script}: {e}");
        }
    }
}

/// What psql printed on stderr for each script it loaded (warnings, notices).
pub type LoadLog = Vec<(&'static str, String)>;

/// A cluster for real openIMIS databases.
pub struct OpenImisPg {
    pub pg: Pg,
    /// The templates loaded so far, with what loading them printed.
    loaded: Mutex<Vec<(Data, LoadLog)>>,
}

impl OpenImisPg {
    pub fn start() -> OpenImisPg {
        OpenImisPg {
            pg: Pg::start_bare(),
            loaded: Mutex::new(Vec::new()),
        }
    }

    /// Creates database `name` holding the openIMIS schema (and the demo data with
    /// [`Data::Demo`]); returns its DSN.
    pub fn create(&self, name: &str, data: Data) -> String {
        self.ensure_template(data);
        self.pg.query(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
            data.template()
        ));
        self.pg.dsn_of(name)
    }

    /// What psql printed while loading the template for `data` (loading it if need be).
    pub fn load_log(&self, data: Data) -> LoadLog {
        self.ensure_template(data)
    }

    /// Loads the template for `data` once: the schema scripts, then for the demo template
    /// the demo data on a copy of the empty one. Panics with psql's words on an error.
    fn ensure_template(&self, data: Data) -> LoadLog {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_locked(&mut loaded, data)
    }

    fn ensure_locked(&self, loaded: &mut Vec<(Data, LoadLog)>, data: Data) -> LoadLog {
        if let Some((_, log)) = loaded.iter().find(|(d, _)| *d == data) {
            return log.clone();
        }
        let db = data.template();
        let log = match data {
            Data::Empty => {
                self.pg.query(&format!("CREATE DATABASE \"{db}\""));
                SCHEMA_SCRIPTS
                    .iter()
                    .map(|script| (*script, self.load(db, script)))
                    .collect()
            }
            Data::Demo => {
                let mut log = self.ensure_locked(loaded, Data::Empty);
                self.pg.query(&format!(
                    "CREATE DATABASE \"{db}\" TEMPLATE \"{}\"",
                    Data::Empty.template()
                ));
                log.push((DEMO_SCRIPT, self.load(db, DEMO_SCRIPT)));
                log
            }
        };
        loaded.push((data, log.clone()));
        log
    }

    fn load(&self, db: &str, script: &'static str) -> String {
        match self.pg.try_psql_file_in(db, &scripts_dir().join(script)) {
            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
            Err(e) => panic!("loading the real openIMIS script {script}: {e}"),
        }
    }
}
