//! `imis-gateway gepg-sim pay --control-number N`: has the GePG simulator built into a
//! running server (`[gepg] mode = "simulator"`) pay a control number with a signed
//! notification, optionally another amount, several deliveries, a delay, or silently (only
//! reconciliation will find it). Prints GePG's view: TrxId, PayRefId and our acks.

#[derive(Debug, clap::Args)]
pub struct GepgSimArgs {
    #[command(subcommand)]
    pub command: GepgSimCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum GepgSimCommand {
    /// Pay a control number.
    Pay {
        #[arg(long, value_name = "N")]
        control_number: String,
        /// Amount paid in TZS (default: the bill's).
        #[arg(long)]
        amount: Option<String>,
        /// Deliver the same notification this many times at once.
        #[arg(long, default_value_t = 1)]
        deliveries: u32,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Do not notify (GePG "forgets"): only reconciliation will apply it.
        #[arg(long)]
        silent: bool,
        /// Base URL of the running server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

pub fn run(args: GepgSimArgs) -> anyhow::Result<()> {
    let GepgSimCommand::Pay {
        control_number,
        amount,
        deliveries,
        delay_ms,
        silent,
        server,
    } = args.command;
    let body = serde_json::json!({
        "control_number": control_number,
        "amount": amount,
        "deliveries": deliveries,
        "delay_ms": delay_ms,
        "silent": silent,
    });
    let v = super::post_json(&server, "/gepg-sim/pay", &body, "simulator")?;
    println!(
        "paid TZS {} on {control_number}: TrxId {} PayRefId {}; acks {}",
        v["amount"].as_str().unwrap_or("?"),
        v["trx_id"].as_str().unwrap_or("?"),
        v["pay_ref_id"].as_str().unwrap_or("?"),
        v["acks"]
    );
    Ok(())
}
