//! `imis-gateway sms send` and `imis-gateway sms check-templates`: the operator's SMS tools.
//!
//! Owns: the commands' arguments and output. `send` renders a template and puts the SMS on
//! the durable outbox of a stopped server's store (the server sends it when it runs; with
//! `--key`, running the command twice owes one SMS). `check-templates` renders every
//! template with its sample values and reports GSM-7 vs UCS2 and the segment count, and
//! rejects an officer reply text that could need more than the reply limit with its
//! essential values at their longest (the grammar's `[fit]` marking).
//! Must never: talk SMPP itself (every SMS goes through the outbox), or change a template.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};

use super::StoreArgs;
use crate::domain::{Language, Msisdn};
use crate::sms::{self, segment, OutboundSms};
use crate::store::{Store, TxResult};

#[derive(Debug, clap::Args)]
pub struct SmsArgs {
    #[command(subcommand)]
    pub command: SmsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SmsCommand {
    /// Queue one SMS from a template (on a stopped server's store; sent when it runs).
    Send {
        /// Recipient phone number (255…, 0…, +255…).
        #[arg(long)]
        to: String,
        /// Template name (a file stem in sms-templates/<lang>/).
        #[arg(long)]
        template: String,
        /// Language: sw or en.
        #[arg(long, default_value = "sw")]
        lang: String,
        /// A template variable, `name=value`; repeat for each.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Idempotency key: the same key never queues a second SMS (default: a new one).
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Render every SMS template with samples.toml; report alphabet and segments.
    CheckTemplates {
        /// Templates directory (default: [sms] templates_dir).
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Returns whether the command succeeded (false: problems were reported).
pub fn run(args: SmsArgs) -> anyhow::Result<bool> {
    match args.command {
        SmsCommand::CheckTemplates { dir, store } => {
            let config = store.load()?;
            let dir = dir.unwrap_or(config.sms.templates_dir.clone());
            let report = sms::templates::check(&dir)
                .with_context(|| format!("checking SMS templates in {}", dir.display()))?;
            for line in &report {
                println!("{line}");
            }
            let mut problems = report.iter().filter(|c| !c.ok()).count();
            // The officer replies: the grammar beside the templates (or [officer]
            // grammar_file), each text checked to fit with its essential values at their
            // longest.
            let beside = dir.join("officer").join("commands.toml");
            let grammar_file = if beside.exists() {
                beside
            } else {
                config.officer.grammar_file.clone()
            };
            let grammar = crate::officer::Grammar::load(&grammar_file)?;
            let unfit = grammar.check_fit();
            for (key, lang, problem) in &unfit {
                println!("officer/{key} ({}): PROBLEM: {problem}", lang.code());
            }
            if unfit.is_empty() {
                println!(
                    "officer replies in {}: every one fits in {} SMS",
                    grammar_file.display(),
                    crate::officer::MAX_SEGMENTS
                );
            }
            problems += unfit.len();
            if problems == 0 {
                eprintln!("SMS templates in {}: OK", dir.display());
            } else {
                eprintln!("SMS templates in {}: {problems} problem(s)", dir.display());
            }
            Ok(problems == 0)
        }
        SmsCommand::Send {
            to,
            template,
            lang,
            vars,
            key,
            store,
        } => {
            let config = store.load()?;
            let to = Msisdn::parse(&to).map_err(|e| anyhow::anyhow!("--to {to:?}: {e}"))?;
            let Some(language) = Language::parse(&lang) else {
                bail!("--lang {lang:?}: use sw or en");
            };
            let mut values = HashMap::new();
            for v in &vars {
                let Some((k, val)) = v.split_once('=') else {
                    bail!("--var {v:?}: use NAME=VALUE");
                };
                values.insert(k.trim(), val.to_string());
            }
            let templates = super::load_templates(&config)?;
            let text = templates.render(&template, language, &values)?;
            let key = key.unwrap_or_else(|| format!("cli:{}", uuid::Uuid::new_v4()));
            let dir = &config.store.data_dir;
            let store = Store::open(dir, config.store.store_options()).with_context(|| {
                format!(
                    "opening store at {} (a running server holds it: stop it first)",
                    dir.display()
                )
            })?;
            let sms = OutboundSms {
                to: to.clone(),
                text: text.clone(),
                template: template.clone(),
                language,
                reference: format!("cli:{key}"),
            };
            let idempotency = format!("cli:{key}:{template}");
            let seq = store
                .write_durable_blocking(|tx| -> TxResult<u64> {
                    Ok(sms::enqueue(tx, &idempotency, &sms)?)
                })
                .context("queueing the SMS")?;
            let (segments, gsm7) = segment::segment_count(&text);
            println!(
                "queued SMS {seq} to {} ({}, {segments} segment(s)): {text}",
                to.masked(),
                if gsm7 { "GSM-7" } else { "UCS2" }
            );
            Ok(true)
        }
    }
}
