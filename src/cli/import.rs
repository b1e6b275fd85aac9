//! `imis-gateway import --from postgres://… --data-dir DIR`: load the central database's
//! current rows into an empty store (progress on stderr, final count on stdout).

use std::io::Write;

use anyhow::Context;

use super::StoreArgs;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Connection string of the central openIMIS database.
    #[arg(long, value_name = "DSN")]
    pub from: String,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let config = args.store.load()?;
    let store = Store::open(&config.store.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?;
    let client = crate::mirror::connect(&args.from)
        .await
        .context("connecting to the central database")?;
    let started = std::time::Instant::now();
    let counts = crate::mirror::pull::import(&client, &store, |table, n| {
        let mut err = std::io::stderr();
        let _ = write!(err, "\rimporting {table}: {n} rows   ");
        let _ = err.flush();
    })
    .await
    .context("import")?;
    eprintln!();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    for (table, n) in &counts {
        println!("{table}: {n}");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {total} rows in {secs:.1}s ({:.0} rows/s)",
        total as f64 / secs.max(1e-9)
    );
    Ok(())
}
