//! `imis-gateway menus check [DIR]`: lint the menus an officer edited, before a reload.
//!
//! Owns: the command's arguments and report format (one problem per line on stdout, a
//! summary on stderr, exit status 1 when there is any problem).
//! Must never: change a file.

use std::path::PathBuf;

use anyhow::Context;

use super::StoreArgs;
use crate::ussd::actions::NAMES;
use crate::ussd::menu::NavKeys;

#[derive(Debug, clap::Args)]
pub struct MenusArgs {
    #[command(subcommand)]
    pub command: MenusCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MenusCommand {
    /// Lint every menu: unreachable screens, missing translations, clashing option keys,
    /// undeclared variables, worst-case screen lengths per language and encoding.
    Check {
        /// Menus directory (default: [ussd] menus_dir).
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Returns whether the menus passed.
pub fn run(args: MenusArgs) -> anyhow::Result<bool> {
    match args.command {
        MenusCommand::Check { dir, store } => {
            let config = store.load()?;
            let dir = dir.unwrap_or(config.ussd.menus_dir.clone());
            let keys = NavKeys {
                back: config.ussd.key_back.clone(),
                home: config.ussd.key_home.clone(),
                more: config.ussd.key_more.clone(),
            };
            let problems = crate::ussd::lint::check(&dir, &keys, NAMES)
                .with_context(|| format!("checking menus in {}", dir.display()))?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                eprintln!("menus in {}: OK", dir.display());
            } else {
                eprintln!("menus in {}: {} problem(s)", dir.display(), problems.len());
            }
            Ok(problems.is_empty())
        }
    }
}
