//! `imis-gateway mirror status|verify`: the mirror's state, lag and dead letters, and the
//! consistency check against the central database. Both read a stopped server's store
//! (`--data-dir`); a running server shows the status under `/health`.

use anyhow::Context;

use super::StoreArgs;
use crate::store::{Store, MIRROR_TOPIC};

#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    #[command(subcommand)]
    pub command: MirrorCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MirrorCommand {
    /// State, lag, pending writes and every dead letter with its reason.
    Status(StoreArgs),
    /// Compare the store with the central database and list the differences (exit status 1
    /// if there are any).
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Connection string of the central database (default: [mirror] dsn).
    #[arg(long, value_name = "DSN")]
    pub dsn: Option<String>,
}

fn open(store_args: &StoreArgs) -> anyhow::Result<(crate::config::Config, Store)> {
    let config = store_args.load()?;
    let store =
        Store::open(&config.store.data_dir, config.store.store_options()).with_context(|| {
            format!(
                "opening store at {} (stop the server first, or read /health)",
                config.store.data_dir.display()
            )
        })?;
    Ok((config, store))
}

pub fn run(args: MirrorArgs) -> anyhow::Result<()> {
    match args.command {
        MirrorCommand::Status(store_args) => status(&store_args),
        MirrorCommand::Verify(v) => tokio::runtime::Runtime::new()?.block_on(verify(v)),
    }
}

fn status(store_args: &StoreArgs) -> anyhow::Result<()> {
    let (_, store) = open(store_args)?;
    let health = crate::mirror::status::health(&store, true);
    println!("state: {}", health["state"].as_str().unwrap_or("unknown"));
    println!("lag_secs: {}", health["lag_secs"]);
    println!("pending: {}", store.pending_count(MIRROR_TOPIC)?);
    println!("applied_total: {}", health["applied_total"]);
    let dead = store.dead(MIRROR_TOPIC)?;
    println!("dead: {}", dead.len());
    for d in dead {
        println!(
            "  {} (seq {}, {}): {}",
            d.key,
            d.seq,
            d.died_at.to_rfc3339(),
            d.last_error
        );
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let (config, store) = open(&args.store)?;
    let dsn = args.dsn.unwrap_or(config.mirror.dsn);
    anyhow::ensure!(!dsn.is_empty(), "no DSN: pass --dsn or set [mirror] dsn");
    let client = crate::mirror::connect(&dsn)
        .await
        .context("connecting to the central database")?;
    let report = crate::mirror::verify::verify(&client, &store)
        .await
        .context("verify")?;
    for d in &report.differences {
        println!("{d}");
    }
    println!(
        "checked {}, pending {}, differences {}",
        report.checked,
        report.pending,
        report.differences.len()
    );
    if !report.differences.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
