//! `HAKIKI <PIN> <CHFID>` / `VERIFY <PIN> <CHFID>` by SMS from a registered staff phone: the
//! same answer as the USSD journey, in one or two segments (templates `facility_verify`,
//! `facility_refused`).
//!
//! Owns: the MO handler ([`VerifyCommand`], plugged into the MO pipeline before the
//! officers'). The PIN is checked before the MO is stored, by [`super::screen`] (the
//! pipeline's screen): the MO is stored with `****` and a note of what the check found and,
//! for a right PIN, the answer. The handler answers from that note in the MO's own
//! transaction, with the lockout bookkeeping (failures, lock) and the verification record.
//! Must never: take an MO that is not a verification from a staff phone (it passes on to
//! the officer commands and HELP), check a PIN itself (it never sees one: an MO stored
//! without the facility screen's note is refused as a PIN not checked, uncounted), or
//! answer one MO twice (the router calls it once per stored MO).

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};

use super::registry::{self, PinCheck};
use super::screen::Note;
use super::verify::{self, Answer, Channel, Record};
use crate::domain::{show_date, Chfid, ChfidRule, Insuree, Language, Msisdn};
use crate::sms::inbound::StoredMo;
use crate::sms::router::{MoHandler, Reply};
use crate::sms::Templates;
use crate::store::{codec, Store, StoreError, TxResult, WriteTx};

/// The command words, Kiswahili first; the word chooses the reply's language.
pub const KEYWORDS: [(&str, Language); 2] = [("HAKIKI", Language::Sw), ("VERIFY", Language::En)];
/// Members named in one answer: two segments at most.
const MAX_MEMBERS: usize = 6;

/// The reply's language when `text` is a verification command.
pub fn keyword(text: &str) -> Option<Language> {
    let first = text.split_whitespace().next()?;
    KEYWORDS
        .iter()
        .find(|(k, _)| first.eq_ignore_ascii_case(k))
        .map(|(_, l)| *l)
}

/// The MO pipeline's handler: answers a verification from a staff phone (see the module doc).
pub struct VerifyCommand;

impl MoHandler for VerifyCommand {
    fn handle(
        &self,
        tx: &mut WriteTx<'_>,
        templates: &Templates,
        mo: &StoredMo,
        from: &Msisdn,
    ) -> TxResult<Option<Vec<Reply>>> {
        let Some(lang) = keyword(&mo.text) else {
            return Ok(None);
        };
        let Some(staff) = registry::staff_in(tx, from)? else {
            return Ok(None);
        };
        // No note (or another screen's): the PIN was not checked before storing.
        let note = crate::sms::inbound::note_in(tx, mo.id)?
            .and_then(|raw| codec::decode::<Note>(&raw).ok())
            .unwrap_or(Note::NotChecked);
        let now = Utc
            .timestamp_millis_opt(mo.received_ms)
            .single()
            .unwrap_or_else(Utc::now);
        let chfid = mo.text.split_whitespace().nth(2).unwrap_or_default();
        let out = decide(&staff, from, chfid, note, now);
        if let Some(r) = &out.record {
            verify::record_in(tx, r)?;
        }
        if let Some(s) = &out.staff {
            registry::put_staff_in(tx, from, s)?;
        }
        let vars: HashMap<&str, String> = out
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let text = match templates.render(out.template, lang, &vars) {
            Ok(t) => t,
            Err(e) => {
                // The record and the lockout matter more than the reply: kept, not answered.
                tracing::warn!(mo_id = mo.id, error = %e, "facility verification: no reply template");
                return Ok(Some(Vec::new()));
            }
        };
        tracing::info!(mo_id = mo.id, hf = %staff.hf, from = %from.masked(), template = out.template, "facility verification answered by SMS");
        Ok(Some(vec![Reply {
            to: from.clone(),
            language: lang,
            template: out.template.into(),
            text,
        }]))
    }
}

/// What to write for one MO: the reply, and the record and staff state that go with it.
struct Outcome {
    template: &'static str,
    vars: Vec<(String, String)>,
    record: Option<Record>,
    staff: Option<registry::Staff>,
}

fn refused(problem: &str, detail: String, staff: Option<registry::Staff>) -> Outcome {
    Outcome {
        template: "facility_refused",
        vars: vec![
            ("problem".into(), problem.into()),
            ("detail".into(), detail),
        ],
        record: None,
        staff,
    }
}

/// The answer to a screened verification under the staff record as it is now.
fn decide(
    staff: &registry::Staff,
    phone: &Msisdn,
    chfid: &str,
    note: Note,
    now: DateTime<Utc>,
) -> Outcome {
    if note == Note::Usage {
        return refused("usage", String::new(), None);
    }
    match (registry::settle(staff, note.seen(), now), note) {
        ((PinCheck::Ok, changed), Note::Right { vars, outcome }) => {
            let record = Record {
                hf: staff.hf.clone(),
                staff: phone.masked(),
                chfid: chfid.to_string(),
                outcome,
                at_ms: now.timestamp_millis(),
                channel: Channel::Sms,
            };
            Outcome {
                template: "facility_verify",
                vars,
                record: Some(record),
                staff: changed,
            }
        }
        // `settle` says Ok only to a right PIN.
        ((PinCheck::Ok, _), _) => refused("usage", String::new(), None),
        ((PinCheck::Wrong { left }, changed), _) => refused("wrong_pin", left.to_string(), changed),
        ((PinCheck::Locked { until_ms }, changed), _) => {
            let until = DateTime::<Utc>::from_timestamp_millis(until_ms)
                .map(|t| crate::domain::eat_datetime(t).format("%H:%M").to_string())
                .unwrap_or_default();
            refused("locked", until, changed)
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
) -> Result<(HashMap<&'static str, String>, &'static str), StoreError> {
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
