//! Enrolment officers' SMS commands: register a family, add a member, renew, status, pending
//! renewals, change PIN, HELP; in Kiswahili or English, as defined in
//! `sms-templates/officer/commands.toml`.
//!
//! Owns: the command language ([`grammar`], [`parse`]), officer authentication and PIN
//! lockout ([`auth`]), the audit trail and resend detection ([`audit`]), one file per command,
//! and the worker that runs commands ([`worker`]).
//!
//! How an MO flows: the SMS router, inside the transaction that stores the MO, sees that the
//! sender is an officer's phone and puts a job on the durable outbox topic
//! [`worker::TOPIC`] ([`route::SmsCommands`], which `serve` puts in the MO pipeline when
//! officer commands are enabled). The worker claims a batch and runs each job:
//! reads first (prefix scans cannot run inside a sled transaction), then ONE
//! transaction with every effect (family, insurees, policy, member rows, payment intent,
//! control number), the reply, the SMS to the head, the audit entry and the "done" marker
//! of the MO; one flush covers the batch before its acks. A crash before the flush loses the
//! writes and re-runs the jobs; one between the flush and the ack finds the marker.
//! PINs are checked before the MO is stored ([`screen`], through [`PinScreen`]): the
//! MO, the audit trail and every key hold `****`, and the worker reads the outcome.
//! Must never: store part of a command, answer a writing command without a valid PIN, keep
//! a PIN in clear, or send a reply longer than 2 SMS.

pub mod activation;
pub mod add_member;
pub mod audit;
pub mod auth;
pub mod change_pin;
pub mod compose;
pub mod grammar;
pub mod help;
pub mod intent;
pub mod parse;
pub mod pending;
pub mod plan;
pub mod register;
pub mod renew;
pub mod route;
pub mod screen;
pub mod status;
pub mod worker;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::config::{Config, GepgMode, OfficerConfig};
use crate::domain::{
    eat_date, show_date, Chfid, Id, Insuree, Language, Location, LocationKind, Officer,
};
use crate::sms::inbound::StoredMo;
use crate::sms::segment::segment_count;
use crate::store::{Store, StoreError};

pub use grammar::{CommandKind, Field, Grammar, GrammarError};
pub use parse::{Command, ParseError};
pub use plan::Plan;
pub use route::{PinScreen, SmsCommands};
pub use worker::TOPIC;

/// Longest reply, in SMS segments.
pub const MAX_SEGMENTS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum OfficerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("PIN hashing: {0}")]
    Pin(#[from] crate::domain::pin::PinError),
    #[error("the command panicked; it is retried alone")]
    Panicked,
}

/// The officer command service: grammar and settings, shared by the worker's tasks.
#[derive(Debug, Clone)]
pub struct Officers {
    pub grammar: Grammar,
    pub settings: OfficerConfig,
    pub gepg: GepgMode,
    /// The SMS templates (`[sms] templates_dir`) of the texts that are no command's reply
    /// (the lockout notice); `None` when they do not load: those texts are not sent.
    pub templates: Option<std::sync::Arc<crate::sms::Templates>>,
}

/// What one command run saw: the officer, the MO, and the dates it is judged on.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub grammar: &'a Grammar,
    pub settings: &'a OfficerConfig,
    pub gepg: GepgMode,
    pub officer: &'a Officer,
    pub lang: Language,
    pub mo: &'a StoredMo,
    /// What the checks before the MO was stored found (`None`: not screened, the PIN is in
    /// the text).
    pub verified: Option<&'a screen::Verified>,
    pub templates: Option<&'a crate::sms::Templates>,
    pub now: DateTime<Utc>,
    /// The MO's day in East Africa Time.
    pub today: NaiveDate,
}

/// What [`Officers::process`] did with an MO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Replied (and, for a successful writing command, stored its effects); the outbox
    /// seqs of the SMS enqueued.
    Replied {
        command: String,
        ok: bool,
        sms: Vec<u64>,
    },
    /// Processed before (a re-run after a crash, or a redelivered job): nothing done.
    AlreadyDone,
    /// Not from an officer's phone any more, or no such MO: nothing to answer.
    Ignored,
}

impl Officers {
    pub fn from_config(config: &Config) -> Result<Officers, GrammarError> {
        Ok(Officers {
            grammar: Grammar::load(&config.officer.grammar_file)?
                .with_chfid_rule(config.domain.chfid_rule()),
            settings: config.officer.clone(),
            gepg: config.gepg.mode,
            templates: match crate::sms::Templates::load(&config.sms.templates_dir) {
                Ok(t) => Some(std::sync::Arc::new(t)),
                Err(e) => {
                    tracing::warn!(error = %e, "SMS templates not loaded: no lockout SMS");
                    None
                }
            },
        })
    }

    /// Runs the command in MO `mo_id` (see the module doc) and waits until its write is on
    /// disk. Blocking: Argon2 and a flush; call it from a blocking thread.
    pub fn process(&self, store: &Store, mo_id: Id) -> Result<Processed, OfficerError> {
        let p = self.process_unflushed(store, mo_id)?;
        store.flushed_blocking()?;
        Ok(p)
    }

    /// [`Officers::process`] without the flush: a batch of commands shares one, and none is
    /// acknowledged before it.
    pub fn process_unflushed(&self, store: &Store, mo_id: Id) -> Result<Processed, OfficerError> {
        match crate::sms::inbound::get(store, mo_id)? {
            Some(mo) => self.handle(store, &mo),
            None => Ok(Processed::Ignored),
        }
    }

    /// Runs the command of a stored MO and enqueues its replies.
    pub fn handle(&self, store: &Store, mo: &StoredMo) -> Result<Processed, OfficerError> {
        if audit::is_done(store, mo.id)? {
            return Ok(Processed::AlreadyDone);
        }
        let Some(msisdn) = mo.msisdn() else {
            return Ok(Processed::Ignored);
        };
        let Some(officer) = store.officer_by_phone(&msisdn)? else {
            return Ok(Processed::Ignored);
        };
        let now = Utc
            .timestamp_millis_opt(mo.received_ms)
            .single()
            .unwrap_or_else(Utc::now);
        let verified = screen::Verified::of_mo(store, mo.id)?;
        let stored_text = mo.text.clone();
        // A screened MO's PINs are masks: the command parses with a stand-in and is judged
        // on the note.
        let unmasked;
        let mo = match &verified {
            Some(_) => {
                unmasked = StoredMo {
                    text: screen::proof_text(&mo.text),
                    ..mo.clone()
                };
                &unmasked
            }
            None => mo,
        };
        let ctx = Ctx {
            store,
            grammar: &self.grammar,
            settings: &self.settings,
            gepg: self.gepg,
            officer: &officer,
            lang: officer.language,
            mo,
            verified: verified.as_ref(),
            templates: self.templates.as_deref(),
            now,
            today: eat_date(now),
        };
        let span = tracing::info_span!(
            "officer_command",
            mo_id = mo.id,
            officer = %officer.code,
            from = %msisdn.masked()
        );
        let _e = span.enter();
        let (command, plan, pins) = run(&ctx)?;
        let masked = match ctx.verified {
            Some(_) => stored_text,
            None => audit::mask_text(&mo.text, &pins),
        };
        let out = plan::commit(&ctx, command, &masked, plan)?;
        if let Processed::Replied { command, ok, .. } = &out {
            tracing::info!(command = %command, ok, "officer command answered");
        }
        Ok(out)
    }
}

/// Parses, authenticates and plans the command; returns its audit name, the plan and the
/// PINs to mask in the audit text.
fn run(ctx: &Ctx<'_>) -> Result<(String, Plan, Vec<String>), OfficerError> {
    let g = ctx.grammar;
    if !auth::is_working(ctx.officer, ctx.today) {
        let date = ctx.officer.works_to.map(show_date).unwrap_or_default();
        let reply = g.text(
            "not_active",
            ctx.lang,
            &[("code", &ctx.officer.code), ("date", &date)],
        );
        return Ok(("inactive".into(), Plan::reject(reply), Vec::new()));
    }
    if !ctx.mo.complete {
        let reply = g.text("incomplete", ctx.lang, &[]);
        let pins = audit::pin_like_second_word(&ctx.mo.text);
        return Ok(("incomplete".into(), Plan::reject(reply), pins));
    }
    let cmd = match parse::parse(g, &ctx.mo.text, ctx.today) {
        Ok(c) => c,
        Err(e) => {
            let pins = audit::pin_like_second_word(&ctx.mo.text);
            return Ok((
                "invalid".into(),
                Plan::reject(error_reply(g, ctx.lang, &e)),
                pins,
            ));
        }
    };
    let kind = cmd.kind();
    let mut pins: Vec<String> = cmd.pin().map(|p| vec![p.to_string()]).unwrap_or_default();
    if let Command::ChangePin { new, repeat, .. } = &cmd {
        pins.push(new.clone());
        pins.push(repeat.clone());
    }
    if !kind.writes() {
        let plan = match &cmd {
            Command::Status { chfid } => status::run(ctx, *chfid)?,
            Command::Pending { page } => pending::run(ctx, *page)?,
            Command::Help { topic } => help::run(ctx, *topic),
            _ => Plan::reject(String::new()),
        };
        return Ok((kind.name().into(), plan, pins));
    }
    let proof = match ctx.verified {
        Some(v) => auth::Proof::Checked(v),
        None => auth::Proof::Clear(cmd.pin().unwrap_or_default()),
    };
    let by_code = match &cmd {
        Command::ChangePin { new, repeat, .. } => {
            let matches = ctx.verified.map_or(new == repeat, |v| v.new_pins_match);
            activation::check(ctx, &proof, matches)?
        }
        _ => None,
    };
    let checked = match by_code {
        Some(c) => c,
        None => auth::check_pin(ctx, &proof)?,
    };
    let state = match checked {
        auth::PinCheck::Ok(state) => state,
        auth::PinCheck::Refused(plan) => return Ok((kind.name().into(), *plan, pins)),
    };
    // A resend within the window (checked after the PIN: a resend is no way around it):
    // the first reply again, no second effect.
    if let Some(reply) = audit::recent_reply(ctx, &cmd)? {
        let mut plan = Plan::answer(reply);
        plan.state = state;
        return Ok((format!("{}-repeat", kind.name()), plan, pins));
    }
    let mut plan = match &cmd {
        Command::Register(r) => register::run(ctx, r)?,
        Command::Add(a) => add_member::run(ctx, a)?,
        Command::Renew { chfid, product, .. } => renew::run(ctx, *chfid, product.as_deref())?,
        Command::ChangePin { new, repeat, .. } => match ctx.verified {
            Some(v) => change_pin::run(ctx, v.new_pins_match, || {
                v.new_pin_hash
                    .clone()
                    .ok_or(crate::domain::pin::PinError::Format)
            })?,
            None => change_pin::run(ctx, new == repeat, || change_pin::hash_new(new))?,
        },
        _ => Plan::reject(String::new()),
    };
    plan.state.extend(state);
    if plan.ok && kind != CommandKind::Pin {
        plan.remember = Some(audit::recent_key(ctx, &cmd));
    }
    plan.reply = fit(&plan.reply);
    Ok((kind.name().into(), plan, pins))
}

/// The reply to a text that is not a valid command.
pub fn error_reply(g: &Grammar, lang: Language, e: &ParseError) -> String {
    let text = match e {
        ParseError::UnknownCommand { got } => {
            if got.is_empty() {
                help::summary(g, lang)
            } else {
                bad_field_text(g, lang, Field::Command, got)
            }
        }
        ParseError::Missing { command, field } => {
            let f = g.field(*field, lang);
            g.text(
                "missing_field",
                lang,
                &[
                    ("field", &f.name),
                    ("expect", &f.expect),
                    ("usage", g.usage(*command, lang)),
                ],
            )
        }
        ParseError::Bad { field, got } => bad_field_text(g, lang, *field, got),
        ParseError::BadChar { field, got, ch } => g.text(
            "bad_char",
            lang,
            &[
                ("field", &g.field(*field, lang).name),
                ("got", got),
                ("char", &ch.to_string()),
            ],
        ),
        ParseError::DobInFuture { got } => g.text("dob_future", lang, &[("got", got)]),
        ParseError::Extra { command, got } => g.text(
            "extra_words",
            lang,
            &[("got", got), ("usage", g.usage(*command, lang))],
        ),
    };
    fit(&text)
}

/// "{field} "{got}" {bad}; {expect}" in the officer's language.
pub fn bad_field(ctx: &Ctx<'_>, field: Field, got: &str) -> String {
    bad_field_text(ctx.grammar, ctx.lang, field, got)
}

/// The `bad_field` text (`{field} "{got}" {bad}; {expect}`) in `lang`.
fn bad_field_text(g: &Grammar, lang: Language, field: Field, got: &str) -> String {
    let f = g.field(field, lang);
    g.text(
        "bad_field",
        lang,
        &[
            ("field", &f.name),
            ("got", got),
            ("bad", &f.bad),
            ("expect", &f.expect),
        ],
    )
}

/// "{field} "{got}" is not registered."
pub fn not_registered(ctx: &Ctx<'_>, field: Field, got: &str) -> String {
    let f = ctx.grammar.field(field, ctx.lang);
    ctx.grammar.text(
        "not_registered",
        ctx.lang,
        &[("field", &f.name), ("got", got)],
    )
}

/// The reply when no member has the typed number `chfid`. A number that fails the CHFID
/// rule is more likely mistyped than unregistered, so it gets the field's "not valid; the
/// expected form" text; one that passes gets "not registered". (A number that fails the
/// rule but exists centrally was found before this is asked.)
pub fn unknown_chfid(ctx: &Ctx<'_>, field: Field, chfid: Chfid) -> String {
    let shown = chfid.to_string();
    match ctx.grammar.chfid_rule().flags(&shown) {
        Some(_) => bad_field(ctx, field, &shown),
        None => not_registered(ctx, field, &shown),
    }
}

/// "CHFID {chfid} is already used ({name})."
pub fn chfid_taken(ctx: &Ctx<'_>, chfid: Chfid) -> Result<String, StoreError> {
    let name = ctx
        .store
        .insuree_by_chfid(chfid)?
        .map(|i| full_name(&i))
        .unwrap_or_else(|| "?".into());
    Ok(ctx.grammar.text(
        "chfid_taken",
        ctx.lang,
        &[("chfid", &chfid.to_string()), ("name", &name)],
    ))
}

/// A CHFID for a new member: the one given (if free) or a new one.
pub fn allocate_chfid(
    ctx: &Ctx<'_>,
    slot: parse::ChfidSlot,
) -> Result<Result<Chfid, String>, StoreError> {
    match slot {
        parse::ChfidSlot::Given(c) => {
            if ctx.store.chfid_taken(c)? {
                return Ok(Err(chfid_taken(ctx, c)?));
            }
            Ok(Ok(c))
        }
        parse::ChfidSlot::New => {
            let mut failed: Option<StoreError> = None;
            let rule = ctx.grammar.chfid_rule();
            let c = Chfid::generate(&mut rand::thread_rng(), &rule, 100, |c| {
                ctx.store.chfid_taken(c).unwrap_or_else(|e| {
                    failed = Some(e);
                    true
                })
            });
            if let Some(e) = failed {
                return Err(e);
            }
            // 100 collisions in a row means the number space is nearly full.
            Ok(c.ok_or_else(|| bad_field(ctx, Field::Chfid, "NEW")))
        }
    }
}

/// `text` cut (at a word where possible) so that it fits in [`MAX_SEGMENTS`] SMS.
pub fn fit(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "?".into();
    }
    let fits = |t: &str| {
        let (n, _) = segment_count(t);
        (1..=MAX_SEGMENTS).contains(&n)
    };
    if fits(text) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    // Largest prefix that fits with the ellipsis, by bisection on the char count.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "..";
        if fits(&candidate) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut cut: String = chars[..lo].iter().collect();
    if let Some(i) = cut.rfind(' ') {
        if i > cut.len() / 2 {
            cut.truncate(i);
        }
    }
    let out = format!("{}..", cut.trim_end());
    if fits(&out) {
        out
    } else {
        "..".into()
    }
}

/// A member's full name, as officers may see it.
pub fn full_name(i: &Insuree) -> String {
    format!("{} {}", i.other_names, i.last_name)
}

/// A village's district and region ids (for product sale areas).
pub fn district_and_region(
    store: &Store,
    village: &Location,
) -> Result<(Option<Id>, Option<Id>), StoreError> {
    let mut current = village.parent;
    let mut district = None;
    let mut region = None;
    for _ in 0..4 {
        let Some(id) = current else { break };
        let Some(loc) = store.location(id)? else {
            break;
        };
        match loc.kind {
            LocationKind::District => district = Some(loc.id),
            LocationKind::Region => region = Some(loc.id),
            _ => {}
        }
        current = loc.parent;
    }
    Ok((district, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_long_texts_to_two_segments() {
        let long = "word ".repeat(200);
        let f = fit(&long);
        assert_eq!(segment_count(&f).0, 2);
        assert!(f.ends_with(".."));
        let uni = "Habari 😀 ".repeat(40);
        assert!(segment_count(&fit(&uni)).0 <= 2);
        assert_eq!(fit("short"), "short");
        assert_eq!(fit("   "), "?");
    }
}
