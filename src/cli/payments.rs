//! `imis-gateway payments show --control-number N`: the whole story of a payment, from a
//! stopped server's store; `imis-gateway payments reconcile --date D`: asks the running
//! server to reconcile day D with GePG and prints the report.

use anyhow::Context;

use super::StoreArgs;
use crate::payments::{notify, spcode, story_of};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct PaymentsArgs {
    #[command(subcommand)]
    pub command: PaymentsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PaymentsCommand {
    /// Payment, policy, premiums, GePG transactions and every step on record.
    Show {
        #[arg(long, value_name = "N")]
        control_number: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reconcile day D (YYYY-MM-DD) through the running server and print the report.
    Reconcile {
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: chrono::NaiveDate,
        /// Base URL of the running server's admin listener ([admin] listen).
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        server: String,
        /// The admin bearer token ([admin] token).
        #[arg(long, env = "IMIS_GATEWAY_ADMIN__TOKEN", hide_env_values = true)]
        token: String,
    },
}

pub fn run(args: PaymentsArgs) -> anyhow::Result<()> {
    match args.command {
        PaymentsCommand::Show {
            control_number,
            store,
        } => show(&control_number, &store),
        PaymentsCommand::Reconcile {
            date,
            server,
            token,
        } => reconcile(date, &server, &token),
    }
}

fn show(number: &str, args: &StoreArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    let store =
        Store::open(&config.store.data_dir, config.store.store_options()).with_context(|| {
            format!(
                "opening store at {} (stop the server first)",
                config.store.data_dir.display()
            )
        })?;
    // Bills of a product without an SpCode are never sent: say so before any payment.
    for pr in store.products()? {
        if let Err(e) = spcode::decide(&pr.code, pr.sp_code.as_deref(), &config.gepg.sp_code) {
            println!("warning: {e}: its bills are not sent to GePG");
        }
    }
    let cn = store.control_number_by_number(number)?;
    let Some(payment) = store.payment_by_control_number(number)? else {
        match cn {
            Some(c) => println!(
                "control number {number}: {:?}, not assigned to a payment (product {:?})",
                c.status, c.product
            ),
            None => println!("control number {number}: unknown"),
        }
        return Ok(());
    };
    println!("control number {number}");
    println!(
        "payment {} ({}) status {:?}: expected TZS {}, received TZS {}",
        payment.id,
        payment.uuid,
        payment.status,
        payment.expected_amount,
        payment
            .received_amount
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "  requested {} by {}, language {}",
        payment.request_date.format("%Y-%m-%d %H:%M UTC"),
        payment
            .phone
            .as_ref()
            .map(|p| p.masked())
            .unwrap_or_else(|| "-".into()),
        payment.language.code()
    );
    if let Some(r) = &payment.rejected_reason {
        println!("  not applied: {r}");
    }
    for d in &payment.details {
        println!(
            "  line: CHFID {} product {} stage {} expected TZS {}",
            d.chfid,
            d.product_code,
            d.stage.code(),
            d.expected_amount
        );
        if let Some(policy) = d.policy.map(|id| store.policy(id)).transpose()?.flatten() {
            println!(
                "  policy {}: {:?}, value TZS {}, start {}, effective {}, expiry {}",
                policy.id,
                policy.status,
                policy.value,
                policy.start_date,
                policy
                    .effective_date
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
                policy.expiry_date
            );
            for p in store.premiums_of_policy(policy.id)? {
                println!(
                    "    premium {}: TZS {} paid {} ({}) receipt {}",
                    p.id,
                    p.amount,
                    p.pay_date,
                    p.pay_type.code(),
                    p.receipt
                );
            }
        }
    }
    for t in notify::transactions(&store)?
        .into_iter()
        .filter(|t| t.payment == Some(payment.id))
    {
        println!(
            "  transaction {} {} PayRefId {} TZS {} at {} via {}: {}",
            t.notice.sp_code,
            t.notice.trx_id,
            t.notice.pay_ref_id,
            t.notice.paid,
            t.notice.paid_at,
            t.notice.psp_name,
            t.outcome
        );
    }
    println!("story:");
    for line in story_of(&store, payment.id)? {
        println!("  {line}");
    }
    Ok(())
}

fn reconcile(date: chrono::NaiveDate, server: &str, token: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"date": date.to_string()});
    let v = super::post_json_as(server, "/payments/reconcile", &body, "server", Some(token))?;
    print!("{}", v["report"].as_str().unwrap_or_default());
    Ok(())
}
