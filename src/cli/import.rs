//! `imis-gateway import --from postgres://… --data-dir DIR`: load the central database's
//! current rows into a new store, all or nothing (progress on stderr; per-table counts,
//! what our input rules would have flagged, and the total on stdout).

use std::io::Write;

use anyhow::Context;

use super::StoreArgs;

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
    let dir = &config.store.data_dir;
    let client = crate::mirror::connect(&args.from)
        .await
        .context("connecting to the central database")?;
    let started = std::time::Instant::now();
    let progress = |table: &str, n: u64| {
        let mut err = std::io::stderr();
        let _ = write!(err, "\rimporting {table}: {n} rows   ");
        let _ = err.flush();
    };
    let imported = crate::mirror::import::into_dir(
        &client,
        dir,
        config.store.store_options(),
        config.domain.chfid_rule(),
        progress,
    )
    .await
    .with_context(|| format!("import into {} (left as it was)", dir.display()))?;
    let counts = imported.counts;
    eprintln!();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    for (table, n) in &counts {
        println!("{table}: {n}");
    }
    // Kept as openIMIS holds them; counted so an operator knows what the data carries.
    for (rule, n) in imported.flagged.named() {
        println!("kept, would be refused if typed: {rule}: {n}");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {total} rows in {secs:.1}s ({:.0} rows/s)",
        total as f64 / secs.max(1e-9)
    );
    Ok(())
}
