//! `imis-gateway demo-data`: deterministic demo or scale data into an empty store.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::demo::{self, DemoOptions};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct DemoDataArgs {
    /// Number of families besides the named demo families.
    #[arg(long, default_value_t = 200)]
    pub families: u64,
    /// Directory of the store to fill (must be empty or new).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Seed of the generator: the same seed and date give the same data.
    #[arg(long, default_value_t = demo::DEFAULT_SEED)]
    pub seed: u64,
    /// Date the data is relative to (YYYY-MM-DD); default: today in East Africa Time.
    #[arg(long)]
    pub today: Option<chrono::NaiveDate>,
}

pub fn run(args: DemoDataArgs) -> anyhow::Result<()> {
    let config = Config::load(None)?;
    let store = Store::open(&args.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", args.data_dir.display()))?;
    let mut options = DemoOptions {
        families: args.families,
        seed: args.seed,
        ..DemoOptions::default()
    };
    if let Some(today) = args.today {
        options.today = today;
    }
    let started = Instant::now();
    let Some(summary) = demo::seed_if_empty(&store, &options)? else {
        bail!(
            "store at {} already has data; demo-data only fills an empty store",
            args.data_dir.display()
        );
    };
    store.flush()?;
    println!("{summary} in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
