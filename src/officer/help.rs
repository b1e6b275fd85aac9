//! HELP / MSAADA: the list of commands, or how to use one (`HELP ADD`), from the grammar
//! file, in the officer's language.

use super::grammar::{CommandKind, Grammar};
use super::plan::Plan;
use super::{fit, Ctx};
use crate::domain::Language;

pub fn run(ctx: &Ctx<'_>, topic: Option<CommandKind>) -> Plan {
    let text = match topic {
        Some(kind) => ctx.grammar.usage(kind, ctx.lang).to_string(),
        None => summary(ctx.grammar, ctx.lang),
    };
    Plan::answer(fit(&text))
}

/// "CHF officers: REG, ADD, RENEW, STATUS, PENDING, PIN. Send HELP ..."
pub fn summary(g: &Grammar, lang: Language) -> String {
    let commands: Vec<&str> = CommandKind::ALL
        .iter()
        .filter(|k| **k != CommandKind::Help)
        .map(|k| g.keyword(*k, lang))
        .collect();
    g.text("help", lang, &[("commands", &commands.join(", "))])
}
