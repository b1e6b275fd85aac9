//! Family reminders: N days before expiry, on the expiry day and N days after, to the head's
//! phone, in the family's language, with the renewal amount and how to renew by USSD.
//!
//! Owns: which (policy, event) pairs are due on a window, and the record that each was sent
//! (aux [`SENT_NS`]), checked in the transaction that enqueues the SMS.
//! Must never: message a family that did not approve SMS, or remind about a policy that has
//! already been renewed (a later policy of the same family and product exists).

use std::collections::HashMap;
use std::convert::Infallible;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::prompts::due_policies;
use super::{JobReport, SchedulerError, SmsJobRun};
use crate::domain::renewal::{needs_renewal_prompt, renewal_date};
use crate::domain::{policy_value, MemberForValue, Policy, PolicyStage};
use crate::sms::{enqueue, OutboundSms};
use crate::store::{Store, TxResult};

/// Reminders per transaction: enough to amortise the commit, short enough not to hold up
/// USSD writes (sled serializes transactions).
const BATCH: usize = 128;

/// Aux namespace: `policy:event` → window the reminder went out.
pub const SENT_NS: &str = "reminder.sent";

/// The three reminder events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Before,
    OnDay,
    After,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Before => "before",
            Event::OnDay => "on-day",
            Event::After => "after",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Event::Before => "reminder_before",
            Event::OnDay => "reminder_on_day",
            Event::After => "reminder_after",
        }
    }
}

/// The event of `p` that falls on `window`, if any.
pub fn event_on(p: &Policy, window: NaiveDate, before: u32, after: u32) -> Option<Event> {
    let e = p.expiry_date;
    if window + Duration::days(i64::from(before)) == e {
        Some(Event::Before)
    } else if window == e {
        Some(Event::OnDay)
    } else if window - Duration::days(i64::from(after)) == e {
        Some(Event::After)
    } else {
        None
    }
}

pub fn run(run: SmsJobRun<'_>) -> Result<(), SchedulerError> {
    let (s, window, now, report) = (run.scheduler, run.window, run.now, run.report);
    let (before, after) = (s.config.reminder_days_before, s.config.reminder_days_after);
    let store = &s.store;
    let (look, due) = due_policies(store, window, before, |p| {
        event_on(p, window, before, after)
    })?;
    let mut owed: Vec<(String, OutboundSms)> = Vec::new();
    for (p, event) in due {
        report.examined += 1;
        let key = format!("{}:{}", p.id, event.name());
        if store.aux_get(SENT_NS, key.as_bytes())?.is_some() {
            continue;
        }
        let family_policies = store.family_policies(p.family)?;
        // Any window from `before` days ahead to after expiry qualifies; the event already
        // pinned the date, this checks status and that no renewal exists yet.
        if !needs_renewal_prompt(&p, &family_policies, window, before) {
            continue;
        }
        let Some(family) = store.family(p.family)? else {
            continue;
        };
        if !family.sms.approved {
            continue;
        }
        let Some(head) = store.insuree(family.head)? else {
            continue;
        };
        let Some(phone) = head.phone.clone() else {
            continue;
        };
        let members: Vec<MemberForValue> = store
            .family_members(family.id)?
            .iter()
            .map(|m| MemberForValue {
                dob: m.dob,
                relationship: m.relationship,
            })
            .collect();
        let product = look.renewal_product(&p);
        let amount = product.map(|prod| {
            policy_value(
                prod,
                &members,
                PolicyStage::Renewal,
                window,
                renewal_date(&p),
                Some(p.expiry_date),
            )
        });
        let first_name = head
            .other_names
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let vars: HashMap<&str, String> = HashMap::from([
            ("name", first_name),
            ("chfid", head.chfid.to_string()),
            ("expiry", p.expiry_date.format("%d/%m/%Y").to_string()),
            ("days", before.max(after).to_string()),
            ("days_before", before.to_string()),
            ("days_after", after.to_string()),
            (
                "amount",
                amount.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            ),
            (
                "product",
                product
                    .map(|x| x.code.clone())
                    .unwrap_or_else(|| "-".into()),
            ),
            ("ussd_code", s.ussd_code.clone()),
        ]);
        let language = family.sms.language;
        let text = s.templates.render(event.template(), language, &vars)?;
        let sms = OutboundSms {
            to: phone,
            text,
            template: event.template().into(),
            language,
            reference: format!("reminder:{key}"),
        };
        if report.dry_run {
            report
                .planned
                .push(format!("SMS {} [{}] {:?}", sms.to.masked(), key, sms.text));
            report.sms += 1;
            report.changed += 1;
            continue;
        }
        owed.push((key, sms));
        if owed.len() >= BATCH {
            enqueue_batch(store, window, now, &mut owed, report)?;
        }
    }
    enqueue_batch(store, window, now, &mut owed, report)?;
    Ok(())
}

/// Records and enqueues `owed` reminders in one transaction, skipping any a concurrent or
/// earlier run already sent.
fn enqueue_batch(
    store: &Store,
    window: NaiveDate,
    now: DateTime<Utc>,
    owed: &mut Vec<(String, OutboundSms)>,
    report: &mut JobReport,
) -> Result<(), SchedulerError> {
    if owed.is_empty() {
        return Ok(());
    }
    let window_s = window.to_string();
    let sent = store.write_at(now, |tx| -> TxResult<u64, Infallible> {
        let mut sent = 0;
        for (key, sms) in owed.iter() {
            if tx.aux_get(SENT_NS, key.as_bytes())?.is_some() {
                continue;
            }
            tx.aux_put(SENT_NS, key.as_bytes(), window_s.as_bytes())?;
            enqueue(tx, &format!("reminder:{key}"), sms)?;
            sent += 1;
        }
        Ok(sent)
    })?;
    report.changed += sent;
    report.sms += sent;
    owed.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{d, policy};

    #[test]
    fn each_event_falls_on_one_window() {
        let p = Policy {
            expiry_date: d(2025, 3, 1),
            ..policy()
        };
        // Five days before 1 March 2025 crosses the end of February (28 days).
        assert_eq!(event_on(&p, d(2025, 2, 24), 5, 5), Some(Event::Before));
        assert_eq!(event_on(&p, d(2025, 3, 1), 5, 5), Some(Event::OnDay));
        assert_eq!(event_on(&p, d(2025, 3, 6), 5, 5), Some(Event::After));
        assert_eq!(event_on(&p, d(2025, 2, 25), 5, 5), None);
        assert_eq!(event_on(&p, d(2025, 3, 5), 5, 5), None);
        // Other intervals.
        assert_eq!(event_on(&p, d(2025, 2, 22), 7, 3), Some(Event::Before));
        assert_eq!(event_on(&p, d(2025, 3, 4), 7, 3), Some(Event::After));
    }
}
