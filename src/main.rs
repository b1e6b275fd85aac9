//! The `imis-gateway` binary: parse the command line, set up tracing, dispatch.

use clap::Parser;
use imis_gateway::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

// Many small allocations per USSD hop (strings, JSON, sled reads): mimalloc is faster than
// glibc's malloc at them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::private_files();
    if !matches!(cli.command, Command::Serve(_)) {
        cli::quiet_on_closed_pipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("IMIS_GATEWAY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(cli::serve::run(args)),
        Command::DemoData(args) => cli::demo_data::run(args),
        Command::Import(args) => tokio::runtime::Runtime::new()?.block_on(cli::import::run(args)),
        Command::Jobs(args) => cli::jobs::run(args),
        Command::Mirror(args) => cli::mirror::run(args),
        Command::Menus(args) => {
            if !cli::menus::run(args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Simulate(args) => cli::simulate::run(args),
        Command::Payments(args) => cli::payments::run(args),
        Command::GepgSim(args) => cli::gepg_sim::run(args),
        Command::Facility(args) => cli::facility::run(args),
        Command::Officer(args) => cli::officer::run(args),
        Command::Sms(args) => {
            if !cli::sms::run(args)? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
