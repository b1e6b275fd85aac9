//! The real openIMIS database (tests/third_party/openimis-db/, upstream's scripts unmodified) in a
//! throwaway cluster ([`super::pg::Pg::start_bare`]): databases created from templates
//! loaded once per cluster, so a test that needs several fresh databases loads the scripts
//! once.
//!
//! Two variants ([`Variant`]): the scripts alone, and the same database after the real
//! openIMIS backend's `manage.py migrate` (tests/openimis-be/setup.sh: a cached venv and a
//! cached `pg_dump` of the migrated database under target/, so only the first run pays for
//! pip and the ~279 migrations; later clusters restore the dump in about a second).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use imis_gateway::mirror::catalogue::{read_table, sequence_in_default, IdSource};
use imis_gateway::mirror::tables;

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

/// Which openIMIS database: the upstream scripts alone, or after the backend's migrations
/// (RowID gone from tblPremium, sequences behind tblPayment/tblPaymentDetails, nullable
/// tblInsuree columns, JsonExt columns, tblUsers rebuilt, 98 tables become 206).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Scripts,
    Migrated,
}

impl Variant {
    fn template(self, data: Data) -> &'static str {
        match (self, data) {
            (Variant::Scripts, d) => d.template(),
            (Variant::Migrated, Data::Empty) => "openimis_template_migrated_empty",
            (Variant::Migrated, Data::Demo) => "openimis_template_migrated_demo",
        }
    }
}

impl Data {
    /// The name setup.sh knows this data set by.
    fn setup_name(self) -> &'static str {
        match self {
            Data::Empty => "empty",
            Data::Demo => "demo",
        }
    }
}

/// tests/openimis-be/setup.sh (see its header for the commands).
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openimis-be/setup.sh")
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
    /// The migrated templates restored so far.
    migrated: Mutex<Vec<Data>>,
}

impl OpenImisPg {
    pub fn start() -> OpenImisPg {
        OpenImisPg {
            pg: Pg::start_bare(),
            loaded: Mutex::new(Vec::new()),
            migrated: Mutex::new(Vec::new()),
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

    /// Creates database `name` holding the openIMIS database of `variant` (with the demo data
    /// for [`Data::Demo`]); returns its DSN. [`OpenImisPg::create`] is the scripts variant.
    /// The migrated variant needs python3 with venv (and, the first time, pip's network
    /// access): without them this panics with what to install, it never skips.
    pub fn create_variant(&self, name: &str, variant: Variant, data: Data) -> String {
        match variant {
            Variant::Scripts => return self.create(name, data),
            Variant::Migrated => self.ensure_migrated(data),
        }
        self.pg.query(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
            variant.template(data)
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

impl OpenImisPg {
    /// Restores the migrated template for `data` once per cluster from setup.sh's cached
    /// dump, making the dump first when it is missing: a scratch database from the scripts
    /// template, migrated and dumped by setup.sh, then dropped.
    fn ensure_migrated(&self, data: Data) {
        let mut migrated = self.migrated.lock().unwrap_or_else(|p| p.into_inner());
        if migrated.contains(&data) {
            return;
        }
        let mut dump = PathBuf::from(self.setup(&["dump-path", data.setup_name()]));
        if !dump.is_file() {
            self.ensure_template(data);
            let scratch = format!("openimis_migrate_{}", data.setup_name());
            self.pg.query(&format!(
                "CREATE DATABASE \"{scratch}\" TEMPLATE \"{}\"",
                data.template()
            ));
            let dsn = self.pg.dsn_of(&scratch);
            dump = PathBuf::from(self.setup(&["dump", data.setup_name(), &dsn]));
            self.pg.query(&format!("DROP DATABASE \"{scratch}\""));
        }
        let db = Variant::Migrated.template(data);
        self.pg.query(&format!("CREATE DATABASE \"{db}\""));
        let out = Command::new(self.pg.bin_dir().join("pg_restore"))
            .args(["--no-owner", "--no-privileges", "--exit-on-error"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db])
            .args(["-p", &self.pg.port.to_string()])
            .arg(&dump)
            .output()
            .expect("run pg_restore");
        assert!(
            out.status.success(),
            "pg_restore of the migrated openIMIS dump {} failed ({}): {}\n\
             (delete it to have tests/openimis-be/setup.sh make it again)",
            dump.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        migrated.push(data);
    }

    /// Runs tests/openimis-be/setup.sh with `args`; its stdout's last line. Panics with what
    /// it printed (which names the package to install when python3 or venv is missing).
    fn setup(&self, args: &[&str]) -> String {
        let script = setup_script();
        let out = Command::new("bash")
            .arg(&script)
            .args(args)
            .env("PG_BIN", self.pg.bin_dir())
            .output()
            .unwrap_or_else(|e| panic!("run bash {}: {e}", script.display()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{} {} failed ({}): the migrated openIMIS database needs the real backend \
             (python3 with venv, pip access to PyPI the first time):\n{stderr}",
            script.display(),
            args.join(" "),
            out.status
        );
        // Its own progress lines (how long pip and migrate took) are worth seeing.
        for line in stderr
            .lines()
            .filter(|l| l.starts_with("openimis-be setup:"))
        {
            eprintln!("{line}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.lines().last().unwrap_or_default().trim().to_string()
    }
}

/// How the mirror's table descriptions (`imis_gateway::mirror::tables::ALL`) disagree with a
/// live catalogue.
pub struct DescriptionCheck {
    /// A column missing, spelled otherwise or of a type the mirror cannot write; a key whose
    /// values come from elsewhere than the description's sequence.
    pub mismatches: Vec<String>,
    /// Tables whose key has no default at all: the writer must allocate it.
    pub allocated: Vec<&'static str>,
}

/// Checks every column a mirror description names against the catalogue `client` reads
/// (spelled exactly as the description spells it, of a type the mirror can write), and that
/// every key draws from the description's sequence: the one the column owns AND the one its
/// default calls (the backend's migrations give some keys a default from a new sequence).
pub async fn check_descriptions(client: &tokio_postgres::Client) -> DescriptionCheck {
    let mut mismatches = Vec::new();
    let mut allocated = Vec::new();
    for desc in tables::ALL {
        let t = &desc.table;
        let cat = match read_table(client, t.name).await {
            Ok(c) => c,
            Err(e) => {
                mismatches.push(e.to_string());
                continue;
            }
        };
        let mut names: Vec<&str> = vec![t.pk, t.audit, "ValidityFrom", "ValidityTo"];
        names.extend(t.uuid);
        names.extend(t.unmapped.iter().copied());
        let typed = t.columns.iter().map(|c| (c.name, Some(c.ty)));
        for (name, ty) in names.into_iter().map(|n| (n, None)).chain(typed) {
            match cat.column(name) {
                Ok(c) if c.name != name => {
                    mismatches.push(format!("{}.{name} is spelled {}", t.name, c.name))
                }
                Ok(c) if ty.is_some_and(|ty| !c.accepts(ty)) => mismatches.push(format!(
                    "{}.{name} is {} ({}), mapped as {ty:?}",
                    t.name, c.ty.data_type, c.ty.udt_name
                )),
                Ok(_) => {}
                Err(e) => mismatches.push(e.to_string()),
            }
        }
        let Ok(pk) = cat.column(t.pk) else { continue };
        match pk.id_source() {
            IdSource::Sequence(seq) if seq == format!("public.\"{}\"", t.seq) => {}
            IdSource::None => allocated.push(t.name),
            other => mismatches.push(format!("{}.{}: {other:?}", t.name, t.pk)),
        }
        // As written in the default: quoted, the exact name; unquoted, folded to lower case.
        let called = pk.fill.default.as_deref().and_then(sequence_in_default);
        if let Some(called) = called {
            let called = called.trim_start_matches("public.");
            let exact = match called.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(quoted) => quoted.to_string(),
                None => called.to_lowercase(),
            };
            if exact != t.seq {
                mismatches.push(format!(
                    "{}.{}: the default calls nextval of {exact}, not {}",
                    t.name, t.pk, t.seq
                ));
            }
        }
    }
    DescriptionCheck {
        mismatches,
        allocated,
    }
}
