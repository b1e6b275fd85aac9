//! `imis-gateway simulate --phone 2557XXXXXXXX`: a USSD phone in the terminal, over the
//! same engine the gateways use.
//!
//! Reads one answer per line from stdin and prints each screen to stdout, so it can be
//! scripted (`printf '1\n1\n070707070\n' | imis-gateway simulate --demo ...`). After an END
//! screen the next line dials again (an empty line just redials). Special lines: `:drop`
//! (the network drops the session; the next line redials), `:quit`.
//! Owns: the terminal loop. Must never: bypass the engine.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;

use super::StoreArgs;
use crate::demo;
use crate::domain::Msisdn;
use crate::store::Store;
use crate::ussd::{Engine, HopEvent, HopKind};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The caller's phone number.
    #[arg(long)]
    pub phone: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Seed demo data if the store is empty (with no --data-dir: a temporary store).
    #[arg(long)]
    pub demo: bool,
    /// Print screens only (no dial and separator lines).
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = args.store.load()?;
    let msisdn = Msisdn::parse(&args.phone).context("--phone")?;
    let temp = (args.store.data_dir.is_none() && args.demo)
        .then(tempfile_dir)
        .transpose()?;
    let store = if let Some(dir) = &temp {
        Store::open(dir, config.store.store_options())?
    } else {
        Store::open(&config.store.data_dir, config.store.store_options())
            .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?
    };
    if args.demo {
        demo::seed_if_empty(&store, &demo::DemoOptions::default()).context("seeding demo data")?;
    }
    let templates = super::load_templates(&config)?;
    let engine = Engine::new(store.clone(), &config, std::sync::Arc::new(templates))
        .context("starting the USSD engine")?;
    let rt = tokio::runtime::Runtime::new()?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut lines = stdin.lock().lines();
    let mut session = 0u32;
    let mut hop = 0u32;
    let mut live = false;
    let service_code = config.ussd.service_code.clone();
    loop {
        let (kind, input) = if live {
            let Some(line) = lines.next().transpose()? else {
                break;
            };
            let line = line.trim().to_string();
            match line.as_str() {
                ":quit" => break,
                ":drop" => {
                    live = false;
                    if !args.quiet {
                        writeln!(out, "[network dropped the session]")?;
                    }
                    continue;
                }
                _ => {
                    hop += 1;
                    (HopKind::Continue, line)
                }
            }
        } else {
            if session > 0 {
                let Some(line) = lines.next().transpose()? else {
                    break;
                };
                if line.trim() == ":quit" {
                    break;
                }
            }
            session += 1;
            hop = 0;
            live = true;
            if !args.quiet {
                writeln!(out, "[dial {service_code}]")?;
            }
            (HopKind::New, String::new())
        };
        let reply = rt.block_on(engine.handle(HopEvent {
            gateway: "simulator".into(),
            session_id: format!("sim-{}-{session}", std::process::id()),
            msisdn: msisdn.clone(),
            service_code: service_code.clone(),
            hop_index: Some(hop),
            input,
            kind,
        }));
        writeln!(out, "{}", reply.text)?;
        if reply.end {
            live = false;
            if !args.quiet {
                writeln!(out, "[session ended]")?;
            }
        } else if !args.quiet {
            writeln!(out, "---")?;
        }
        out.flush()?;
    }
    drop(engine);
    store.flush()?;
    drop(store);
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("imis-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
