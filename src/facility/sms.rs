//! `HAKIKI <PIN> <CHFID>` / `VERIFY <PIN> <CHFID>` by SMS from a registered staff phone: the
//! same answer as the USSD journey, in one or two segments (templates `facility_verify`,
//! `facility_refused`).
//!
//! Owns: the MO handler ([`VerifyCommand`], plugged into the MO pipeline before the
//! officers'), the durable topic [`TOPIC`] it queues on, and its worker. The PIN is checked
//! by the worker, not in the MO's transaction: Argon2 is slow on purpose, and the MO's
//! transaction must stay short (as the officer commands do it).
//! Must never: take an MO that is not a verification from a staff phone (it passes on to
//! the officer commands and HELP), leave the PIN in the stored MO once answered (the MO is
//! masked in the answer's transaction), or answer one MO twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::registry::{self, PinCheck};
use super::verify::{self, Answer, Channel, Record};
use super::FacilityError;
use crate::domain::{show_date, Chfid, ChfidRule, Id, Insuree, Language, Msisdn};
use crate::shutdown::Signal;
use crate::sms::inbound::StoredMo;
use crate::sms::router::{MoHandler, Reply};
use crate::sms::{OutboundSms, Templates};
use crate::store::consumer::{Consumer, ConsumerLoop, Flushes, LoopOptions, Unavailable, Verdict};
use crate::store::{codec, OutboxItem, Store, StoreError, TxError, TxResult, WriteTx};

pub const TOPIC: &str = "facility.verify";
/// The command words, Kiswahili first; the word chooses the reply's language.
pub const KEYWORDS: [(&str, Language); 2] = [("HAKIKI", Language::Sw), ("VERIFY", Language::En)];
const NS_DONE: &str = "facility.done";
/// Members named in one answer: two segments at most.
const MAX_MEMBERS: usize = 6;

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    mo: Id,
}

fn keyword(text: &str) -> Option<Language> {
    let first = text.split_whitespace().next()?;
    KEYWORDS
        .iter()
        .find(|(k, _)| first.eq_ignore_ascii_case(k))
        .map(|(_, l)| *l)
}

/// The MO pipeline's handler: a verification from a staff phone becomes a job.
pub struct VerifyCommand;

impl MoHandler for VerifyCommand {
    fn handle(
        &self,
        tx: &mut WriteTx<'_>,
        _templates: &Templates,
        mo: &StoredMo,
        from: &Msisdn,
    ) -> TxResult<Option<Vec<Reply>>> {
        if keyword(&mo.text).is_none() || registry::staff_in(tx, from)?.is_none() {
            return Ok(None);
        }
        let payload = codec::encode_aux(&Job { mo: mo.id }).map_err(TxError::from)?;
        tx.outbox_push(TOPIC, &format!("mo:{}", mo.id), &payload)?;
        Ok(Some(Vec::new()))
    }
}

/// Starts the worker; it stops on shutdown.
pub fn spawn(
    store: Store,
    templates: Arc<Templates>,
    signal: Signal,
) -> tokio::task::JoinHandle<()> {
    let opts = LoopOptions {
        flush: Flushes {
            before_settle: true,
            ..Flushes::default()
        },
        ..LoopOptions::new(TOPIC, Duration::from_secs(5), Duration::from_millis(200))
    };
    let worker = Arc::new(Worker {
        store: store.clone(),
        templates,
    });
    tokio::spawn(ConsumerLoop::new(store, worker, opts).run(signal))
}

struct Worker {
    store: Store,
    templates: Arc<Templates>,
}

impl Consumer for Worker {
    async fn run(&self, items: &[OutboxItem]) -> Result<Vec<Verdict>, Unavailable> {
        let (store, templates) = (self.store.clone(), self.templates.clone());
        let items = items.to_vec();
        let n = items.len();
        let ran = tokio::task::spawn_blocking(move || {
            items
                .iter()
                .map(|item| match codec::decode_aux::<Job>(&item.payload) {
                    Err(_) => Verdict::Dead("undecodable job".into()),
                    Ok(job) => match process(&store, &templates, job.mo) {
                        Ok(()) => Verdict::Done,
                        Err(e) => {
                            tracing::warn!(mo_id = job.mo, error = %e, "facility verification failed; will retry");
                            Verdict::Retry(e.to_string())
                        }
                    },
                })
                .collect::<Vec<_>>()
        })
        .await;
        Ok(ran.unwrap_or_else(|_| vec![Verdict::Leave; n]))
    }
}

/// What to write for one MO: the reply, and the record and staff state that go with it.
struct Outcome {
    template: &'static str,
    vars: HashMap<&'static str, String>,
    record: Option<Record>,
    staff: Option<registry::Staff>,
}

/// Answers the verification in stored MO `mo_id` (unflushed; the loop flushes the batch).
pub fn process(store: &Store, templates: &Templates, mo_id: Id) -> Result<(), FacilityError> {
    let Some(mo) = crate::sms::inbound::get(store, mo_id)? else {
        return Ok(());
    };
    let (Some(phone), Some(lang)) = (mo.msisdn(), keyword(&mo.text)) else {
        return Ok(());
    };
    if store.aux_get(NS_DONE, &mo_id.to_be_bytes())?.is_some() {
        return Ok(());
    }
    let Some(staff) = registry::staff_of(store, &phone)? else {
        return Ok(());
    };
    let now = Utc
        .timestamp_millis_opt(mo.received_ms)
        .single()
        .unwrap_or_else(Utc::now);
    let words: Vec<&str> = mo.text.split_whitespace().collect();
    let out = decide(store, &staff, &phone, &words, now)?;
    let text = templates.render(out.template, lang, &out.vars)?;
    let masked = match words.as_slice() {
        [kw, _pin, rest @ ..] => format!("{kw} **** {}", rest.join(" ")),
        _ => mo.text.clone(),
    };
    let sms = OutboundSms {
        to: phone.clone(),
        text,
        template: out.template.into(),
        language: lang,
        reference: format!("mo:{mo_id}"),
    };
    store
        .write(|tx| -> TxResult<()> {
            crate::sms::enqueue(tx, &format!("mo:{mo_id}:facility"), &sms)?;
            if let Some(r) = &out.record {
                verify::record_in(tx, r)?;
            }
            if let Some(s) = &out.staff {
                registry::put_staff_in(tx, &phone, s)?;
            }
            crate::sms::inbound::mask_in(tx, mo_id, &masked)?;
            tx.aux_put(NS_DONE, &mo_id.to_be_bytes(), b"1")?;
            Ok(())
        })
        .map_err(StoreError::from)?;
    tracing::info!(mo_id, hf = %staff.hf, from = %phone.masked(), template = out.template, "facility verification answered by SMS");
    Ok(())
}

fn refused(problem: &str, detail: String, staff: Option<registry::Staff>) -> Outcome {
    let vars = HashMap::from([("problem", problem.to_string()), ("detail", detail)]);
    Outcome {
        template: "facility_refused",
        vars,
        record: None,
        staff,
    }
}

fn decide(
    store: &Store,
    staff: &registry::Staff,
    phone: &Msisdn,
    words: &[&str],
    now: DateTime<Utc>,
) -> Result<Outcome, FacilityError> {
    let [_, pin, chfid] = words else {
        return Ok(refused("usage", String::new(), None));
    };
    match registry::check_pin(staff, pin, now) {
        (PinCheck::Ok, changed) => {
            let (vars, outcome) = answer_vars(store, chfid, now)?;
            let record = Record {
                hf: staff.hf.clone(),
                staff: phone.masked(),
                chfid: chfid.to_string(),
                outcome: outcome.to_string(),
                at_ms: now.timestamp_millis(),
                channel: Channel::Sms,
            };
            Ok(Outcome {
                template: "facility_verify",
                vars,
                record: Some(record),
                staff: changed,
            })
        }
        (PinCheck::Wrong { left }, changed) => Ok(refused("wrong_pin", left.to_string(), changed)),
        (PinCheck::Locked { until_ms }, changed) => {
            let until = DateTime::<Utc>::from_timestamp_millis(until_ms)
                .map(|t| crate::domain::eat_datetime(t).format("%H:%M").to_string())
                .unwrap_or_default();
            Ok(refused("locked", until, changed))
        }
    }
}

/// A member as named to a facility: first name and surname (the USSD journey maps them to
/// the GSM alphabet; an SMS may go UCS2).
pub fn full_name(i: &Insuree) -> String {
    format!("{} {}", i.other_names, i.last_name)
}

/// The answer's variables for a template or a screen, and the outcome to record.
pub fn answer_vars(
    store: &Store,
    typed: &str,
    now: DateTime<Utc>,
) -> Result<(HashMap<&'static str, String>, &'static str), FacilityError> {
    let today = crate::domain::eat_date(now);
    let found = match Chfid::from_central(typed) {
        Ok(c) => verify::answer(store, c, today)?,
        Err(_) => None,
    };
    let mut vars: HashMap<&'static str, String> = HashMap::from([("chfid", typed.to_string())]);
    let Some(a) = found else {
        let bad_digit = ChfidRule::default().parse(typed).is_err();
        vars.insert(
            "outcome",
            if bad_digit {
                "bad_chfid"
            } else {
                verify::UNKNOWN_CHFID
            }
            .into(),
        );
        for k in ["name", "sex", "yob", "village", "expiry", "members"] {
            vars.insert(k, String::new());
        }
        return Ok((vars, verify::UNKNOWN_CHFID));
    };
    let outcome = verify::outcome(Some(&a));
    vars.extend(identity_vars(&a));
    vars.insert("outcome", outcome.into());
    Ok((vars, outcome))
}

/// Name, sex, year of birth, village, cover end and the covered members of an answer.
pub fn identity_vars(a: &Answer) -> [(&'static str, String); 6] {
    let mut members: Vec<String> = a
        .covered_members
        .iter()
        .take(MAX_MEMBERS)
        .map(|m| {
            m.other_names
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    if a.covered_members.len() > MAX_MEMBERS {
        members.push(format!("+{}", a.covered_members.len() - MAX_MEMBERS));
    }
    let members = if members.is_empty() {
        "-".to_string()
    } else {
        members.join(", ")
    };
    [
        ("name", full_name(&a.patient)),
        ("sex", a.sex().to_string()),
        ("yob", a.year_of_birth().to_string()),
        ("village", a.village.clone()),
        (
            "expiry",
            a.eligibility
                .expiry
                .map(show_date)
                .unwrap_or_else(|| "-".into()),
        ),
        ("members", members),
    ]
}
