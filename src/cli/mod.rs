//! The command line: one file per subcommand, each with a `run` that `main` calls.
//!
//! Owns: argument parsing and the mapping from flags onto [`Config`].
//! Must never: hold logic that a test could not reach without a process (commands call
//! library functions that tests call directly).

pub mod demo_data;
pub mod facility;
pub mod gepg_sim;
pub mod import;
pub mod jobs;
pub mod menus;
pub mod mirror;
pub mod officer;
pub mod payments;
pub mod serve;
pub mod simulate;
pub mod sms;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// Lets a one-shot command whose output goes to a pipe closed early (`… | head`) end
/// quietly, as Unix tools do, instead of panicking in `println!` with "Broken pipe".
///
/// Rust ignores SIGPIPE so that writes fail with EPIPE; for a command that only prints,
/// the default action (end the process) is the right one. Not for `serve`: a server must
/// never die because a peer went away.
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called at the start of main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Files this process creates are its user's alone (umask 077): the store holds phone
/// numbers, names and payments, and sled creates files (snapshots, blobs) as it runs.
/// `Store::open` narrows what an older store left wider.
pub fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "imis-gateway",
    version,
    about = "USSD/SMS application server for openIMIS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP edge, USSD engine, SMS pipeline, payments, mirror.
    Serve(serve::ServeArgs),
    /// Write deterministic demo or scale data into an empty store.
    DemoData(demo_data::DemoDataArgs),
    /// The scheduled jobs: `jobs list`, `jobs run NAME [--date D] [--dry-run]`.
    Jobs(jobs::JobsArgs),
    /// Load the central openIMIS database's current rows into an empty store.
    Import(import::ImportArgs),
    /// The mirror to the central database: `mirror status`, `mirror verify`.
    Mirror(mirror::MirrorArgs),
    /// Menus: `menus check [DIR]` lints them.
    Menus(menus::MenusArgs),
    /// A USSD phone in the terminal over the real engine (scriptable through stdin).
    Simulate(simulate::SimulateArgs),
    /// SMS: `sms send --to N --template T`, `sms check-templates [DIR]`.
    Sms(sms::SmsArgs),
    /// GePG payments: `payments show --control-number N`, `payments reconcile --date D`.
    Payments(payments::PaymentsArgs),
    /// Health facilities and their staff phones: `facility add`, `facility add-staff`.
    Facility(facility::FacilityArgs),
    /// Enrolment officers: `officer unlock --code C`, `officer audit --code C`.
    Officer(officer::OfficerArgs),
    /// The GePG simulator of a running demo server: `gepg-sim pay --control-number N`.
    GepgSim(gepg_sim::GepgSimArgs),
}

/// Flags shared by commands that open the store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Configuration file (TOML); see imis-gateway.example.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store (overrides [store] data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl StoreArgs {
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.store.data_dir = dir.clone();
        }
        let sources = Path::new(env!("CARGO_MANIFEST_DIR"));
        let beside = self.config.as_deref().and_then(Path::parent);
        for path in [
            &mut config.ussd.menus_dir,
            &mut config.sms.templates_dir,
            &mut config.officer.grammar_file,
        ] {
            *path = locate_shipped(path, beside, sources);
        }
        Ok(config)
    }
}

/// Menus, SMS texts and the officer grammar ship with the gateway, named by relative paths
/// (`menus`, `sms-templates`): one that does not exist from the working directory is looked
/// up beside the configuration file, then in the source tree the binary was built from, so
/// the README's commands work from any directory. An absolute path, or one found nowhere,
/// is kept as given (the error then names it).
fn locate_shipped(path: &Path, beside_config: Option<&Path>, sources: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    beside_config
        .into_iter()
        .chain([sources])
        .map(|dir| dir.join(path))
        .find(|p| p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

/// The SMS templates `[sms] templates_dir` names; a bad directory is one clear error.
pub(crate) fn load_templates(config: &Config) -> anyhow::Result<crate::sms::Templates> {
    use anyhow::Context;
    let dir = &config.sms.templates_dir;
    crate::sms::Templates::load(dir)
        .with_context(|| format!("loading SMS templates from {}", dir.display()))
}

/// POSTs `body` as JSON to `path` on a running server and returns its JSON answer; an answer
/// that is not a success is an error naming `who` answered and what it said.
pub(crate) fn post_json(
    server: &str,
    path: &str,
    body: &serde_json::Value,
    who: &str,
) -> anyhow::Result<serde_json::Value> {
    post_json_as(server, path, body, who, None)
}

/// As [`post_json`], with `Authorization: Bearer <token>` (the admin listener).
pub(crate) fn post_json_as(
    server: &str,
    path: &str,
    body: &serde_json::Value,
    who: &str,
    bearer: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let url = format!("{}{path}", server.trim_end_matches('/'));
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut req = reqwest::Client::new()
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let r = req
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("reaching the server at {server}"))?;
        let status = r.status();
        let raw = r.bytes().await.context("reading the answer")?;
        let v: serde_json::Value =
            serde_json::from_slice(&raw).context("the answer is not JSON")?;
        anyhow::ensure!(status.is_success(), "{who} answered {status}: {v}");
        Ok(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_are_found_from_any_directory() {
        let sources = tempfile::tempdir().unwrap();
        std::fs::create_dir(sources.path().join("shipped-menus")).unwrap();
        let config_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(config_dir.path().join("shipped-texts")).unwrap();
        // Not under the working directory: beside the config, else in the sources.
        let menus = Path::new("no-such-dir-here/menus");
        assert_eq!(
            locate_shipped(menus, Some(config_dir.path()), sources.path()),
            menus,
            "found nowhere: kept, so the error names it"
        );
        assert_eq!(
            locate_shipped(
                Path::new("shipped-menus"),
                Some(config_dir.path()),
                sources.path()
            ),
            sources.path().join("shipped-menus")
        );
        assert_eq!(
            locate_shipped(
                Path::new("shipped-texts"),
                Some(config_dir.path()),
                sources.path()
            ),
            config_dir.path().join("shipped-texts")
        );
        let abs = config_dir.path().join("elsewhere");
        assert_eq!(locate_shipped(&abs, None, sources.path()), abs);
    }
}
