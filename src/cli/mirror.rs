//! `imis-gateway mirror status`: the mirror's state, lag and dead letters, from a stopped
//! server's store (`--data-dir`); a running server shows the same under `/health`.

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
}

pub fn run(args: MirrorArgs) -> anyhow::Result<()> {
    let MirrorCommand::Status(store_args) = args.command;
    let config = store_args.load()?;
    let store =
        Store::open(&config.store.data_dir, config.store.store_options()).with_context(|| {
            format!(
                "opening store at {} (stop the server first, or read /health)",
                config.store.data_dir.display()
            )
        })?;
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
