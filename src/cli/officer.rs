//! `imis-gateway officer unlock`, `officer set-pin`, `officer send-activation` and `officer audit`: the administrator's
//! tools for enrolment officers' SMS commands, on a stopped server's store.
//!
//! Owns: the commands' arguments and output. Must never: show a PIN (audit texts are stored
//! masked), take one on the command line (it would sit in the process list and the shell
//! history: `set-pin` reads it from standard input), or change anything but the PIN and the
//! lockout state.

use anyhow::{bail, Context};

use super::StoreArgs;
use crate::officer::grammar::Grammar;
use crate::officer::{activation, audit, auth, OfficerError};
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
    /// Set an officer's PIN (officers imported from openIMIS have none) and lift any lockout.
    /// The PIN (4 to 8 digits) is read from standard input, one line.
    SetPin {
        /// Officer code, e.g. EO0001.
        #[arg(long)]
        code: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Send the officer a one-time activation code by SMS, to the phone openIMIS has for them;
    /// they set their PIN with `PIN <code> <new PIN> <new PIN>`. Nobody else sees the code.
    SendActivation {
        /// Officer code, e.g. EO0001.
        #[arg(long)]
        code: String,
        /// How long the code is valid.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=168))]
        valid_hours: u32,
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
        OfficerCommand::Unlock { code, store }
        | OfficerCommand::SetPin { code, store }
        | OfficerCommand::SendActivation { code, store, .. }
        | OfficerCommand::Audit { code, store } => (code, store),
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
        OfficerCommand::SetPin { .. } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the PIN from standard input")?;
            match auth::set_pin(&store, code, line.trim()) {
                Ok(Some(())) => println!("{code}: PIN set; any lockout lifted"),
                Ok(None) => bail!("no officer with code {code}"),
                Err(OfficerError::Pin(e)) => bail!("{code}: PIN not set: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
        OfficerCommand::SendActivation { valid_hours, .. } => {
            let grammar = Grammar::load(&config.officer.grammar_file)?;
            let valid = chrono::Duration::hours(i64::from(valid_hours));
            let sent = activation::issue(&store, &grammar, code, valid, chrono::Utc::now())?;
            println!(
                "{code}: activation code queued by SMS to {}; valid until {} (EAT). \
                 The officer sends: PIN <code> <new PIN> <new PIN>",
                sent.to_masked,
                crate::domain::eat_datetime(sent.until).format("%d/%m/%Y %H:%M")
            );
        }
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
