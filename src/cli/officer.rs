//! `imis-gateway officer unlock` and `imis-gateway officer audit`: the administrator's tools
//! for enrolment officers' SMS commands, on a stopped server's store.
//!
//! Owns: the commands' arguments and output. Must never: show a PIN (audit texts are stored
//! masked) or change anything but the lockout state.

use anyhow::{bail, Context};

use super::StoreArgs;
use crate::officer::{audit, auth};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct OfficerArgs {
    #[command(subcommand)]
    pub command: OfficerCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum OfficerCommand {
    /// Lift a PIN lockout (after too many wrong PINs).
    Unlock {
        /// Officer code, e.g. EO0001.
        #[arg(long)]
        code: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print an officer's commands and replies, oldest first.
    Audit {
        #[arg(long)]
        code: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(args: OfficerArgs) -> anyhow::Result<()> {
    let (code, store_args) = match &args.command {
        OfficerCommand::Unlock { code, store } | OfficerCommand::Audit { code, store } => {
            (code, store)
        }
    };
    let config = store_args.load()?;
    let store = Store::open(&config.store.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?;
    match args.command {
        OfficerCommand::Unlock { .. } => match auth::unlock(&store, code)? {
            Some(true) => println!("{code}: lockout lifted"),
            Some(false) => println!("{code}: was not locked"),
            None => bail!("no officer with code {code}"),
        },
        OfficerCommand::Audit { .. } => {
            let Some(officer) = store.officer_by_code(code)? else {
                bail!("no officer with code {code}");
            };
            for e in audit::of_officer(&store, officer.id)? {
                let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(e.at_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let ok = if e.ok { "ok" } else { "refused" };
                println!(
                    "{at}\tmo {}\t{}\t{ok}\t{}\t→ {}",
                    e.mo_id, e.command, e.text, e.reply
                );
            }
        }
    }
    Ok(())
}
