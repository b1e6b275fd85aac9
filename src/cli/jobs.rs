//! `imis-gateway jobs list | run NAME [--date D] [--dry-run]`: the scheduler by hand.

use std::sync::Arc;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use super::StoreArgs;
use crate::scheduler::{clock::Clock, Job, Scheduler};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// Jobs with their last window, last run, next run and last result.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run one job for one day (default: today in East Africa Time).
    Run {
        /// expire-policies, renewal-prompts or family-reminders.
        name: String,
        /// The day (window) to run for, YYYY-MM-DD.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Print what would be done and sent; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn open(args: &StoreArgs) -> anyhow::Result<Scheduler> {
    let config = args.load()?;
    let store = Store::open(&config.store.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?;
    let templates = super::load_templates(&config)?;
    Ok(Scheduler::new(
        store,
        Arc::new(templates),
        config.scheduler.clone(),
        config.ussd.service_code.clone(),
    )?)
}

pub fn run(args: JobsArgs) -> anyhow::Result<()> {
    match args.command {
        JobsCommand::List { store } => {
            let s = open(&store)?;
            println!(
                "{:<18} {:<12} {:<22} {:<22} last result",
                "job", "last window", "last run (UTC)", "next run (UTC)"
            );
            for st in s.list(Utc::now())? {
                println!(
                    "{:<18} {:<12} {:<22} {:<22} {}",
                    st.job.name(),
                    st.state
                        .last_window
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                    st.state
                        .last_run_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "-".into()),
                    st.next_run.format("%Y-%m-%d %H:%M"),
                    st.state.last_result.as_deref().unwrap_or("-"),
                );
            }
            Ok(())
        }
        JobsCommand::Run {
            name,
            date,
            dry_run,
            store,
        } => {
            let s = open(&store)?;
            let job = Job::parse(&name)?;
            let now = Utc::now();
            let window = date.unwrap_or_else(|| Clock::local(now).date());
            let report = s.run_window(job, window, now, dry_run)?;
            for line in &report.planned {
                println!("{line}");
            }
            println!("{}", report.summary());
            Ok(())
        }
    }
}
