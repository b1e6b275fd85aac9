//! `imis-gateway facility add`, `facility add-staff`, `facility remove-staff`, `facility
//! list` and `facility log`: the administrator's registry of health facilities and their
//! staff phones (issue 21), on a stopped server's store.
//!
//! Owns: the commands' arguments and output. Must never: take a PIN on the command line
//! (it would sit in the process list and the shell history: `add-staff` reads it from
//! standard input), or print one.

use anyhow::{bail, Context};

use super::StoreArgs;
use crate::domain::Msisdn;
use crate::facility::registry::{self, Facility};
use crate::facility::{verify, FacilityError};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct FacilityArgs {
    #[command(subcommand)]
    pub command: FacilityCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FacilityCommand {
    /// Add or replace a health facility (`tblHF`), by its HF code.
    Add {
        /// `HFCode`, 1 to 8 letters or digits.
        #[arg(long)]
        hf: String,
        /// `HFName`.
        #[arg(long)]
        name: String,
        /// `HFLevel`: D dispensary, C health centre, H hospital.
        #[arg(long, default_value_t = 'D')]
        level: char,
        /// `HFCareType`: I in-patient, O out-patient, B both.
        #[arg(long, default_value_t = 'B')]
        care_type: char,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add or replace every current facility of the central openIMIS database (`tblHF`).
    Import {
        /// Connection string of the central openIMIS database.
        #[arg(long, value_name = "DSN")]
        from: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Register a staff phone against a facility. Its PIN (4 to 8 digits) is read from
    /// standard input, one line; a phone registered again gets the new PIN and is unlocked.
    AddStaff {
        #[arg(long)]
        hf: String,
        #[arg(long)]
        phone: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a staff phone.
    RemoveStaff {
        #[arg(long)]
        phone: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the facilities, their staff phones (masked) and today's verification count.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a facility's verifications, oldest first.
    Log {
        #[arg(long)]
        hf: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(args: FacilityArgs) -> anyhow::Result<()> {
    let store_args = match &args.command {
        FacilityCommand::Add { store, .. }
        | FacilityCommand::Import { store, .. }
        | FacilityCommand::AddStaff { store, .. }
        | FacilityCommand::RemoveStaff { store, .. }
        | FacilityCommand::List { store }
        | FacilityCommand::Log { store, .. } => store,
    };
    let config = store_args.load()?;
    let store = Store::open(&config.store.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?;
    match args.command {
        FacilityCommand::Add {
            hf,
            name,
            level,
            care_type,
            ..
        } => {
            let f = Facility {
                code: hf,
                name,
                level: level.to_ascii_uppercase(),
                care_type: care_type.to_ascii_uppercase(),
            };
            registry::put_facility(&store, &f)?;
            println!("{}: facility saved", f.code.to_ascii_uppercase());
        }
        FacilityCommand::Import { from, .. } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            let n = rt.block_on(async {
                let client = crate::mirror::connect(&from)
                    .await
                    .context("connecting to the central database")?;
                anyhow::Ok(crate::facility::central::import(&client, &store).await?)
            })?;
            println!("{n} facilities imported from tblHF");
        }
        FacilityCommand::AddStaff { hf, phone, .. } => {
            let phone = Msisdn::parse(&phone).context("--phone")?;
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the PIN from standard input")?;
            match registry::add_staff(&store, &hf, &phone, line.trim()) {
                Ok(f) => println!("{}: staff phone {} registered", f.code, phone.masked()),
                Err(FacilityError::Pin(e)) => bail!("staff phone not registered: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
        FacilityCommand::RemoveStaff { phone, .. } => {
            let phone = Msisdn::parse(&phone).context("--phone")?;
            if !registry::remove_staff(&store, &phone)? {
                bail!("{} is not a registered staff phone", phone.masked());
            }
            println!("{}: removed", phone.masked());
        }
        FacilityCommand::List { .. } => list(&store)?,
        FacilityCommand::Log { hf, .. } => {
            for r in verify::records(&store, &hf.trim().to_ascii_uppercase())? {
                let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(r.at_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "{at}\t{:?}\t{}\t{}\t{}",
                    r.channel, r.staff, r.chfid, r.outcome
                );
            }
        }
    }
    Ok(())
}

fn list(store: &Store) -> anyhow::Result<()> {
    let staff = registry::staff(store)?;
    let today = crate::domain::eat_date(chrono::Utc::now());
    let counts = verify::daily_counts(store, today)?;
    for f in registry::facilities(store)? {
        let n = counts
            .iter()
            .find(|(hf, _)| *hf == f.code)
            .map_or(0, |(_, n)| *n);
        println!(
            "{}\t{}\tlevel {}\tcare {}\tverified today {n}",
            f.code, f.name, f.level, f.care_type
        );
        for (phone, s) in staff.iter().filter(|(_, s)| s.hf == f.code) {
            let shown = Msisdn::parse(phone).map_or_else(|_| "?".into(), |m| m.masked());
            let locked = if s.locked_until_ms.is_some() {
                "\tlocked"
            } else {
                ""
            };
            println!("\tstaff {shown}{locked}");
        }
    }
    Ok(())
}
