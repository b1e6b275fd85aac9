//! Renewal prompts for officers (`uspPolicyRenewalInserts`): which policies are due a
//! renewal, by which officer, with which warnings; one SMS digest per officer per day.
//!
//! Owns: the prompt records (aux [`PROMPTS_NS`], policy id → [`Prompt`]), which the
//! officer's "pending renewals" command and reports read, and the officer digest SMS.
//! Must never: prompt a policy twice, or message an officer who opted out of phone
//! communication.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Scheduler, SchedulerError, SmsJobRun};
use crate::domain::renewal::{
    effective_officer, needs_renewal_prompt, renewal_date, renewal_warnings,
};
use crate::domain::{renewal_product, Id, Msisdn, Officer, Policy, PolicyStatus, Product};
use crate::sms::{enqueue, OutboundSms};
use crate::store::{codec, Store, StoreError, TxError, TxResult};

/// Aux namespace of prompt records: policy id (BE u64) → [`Prompt`].
pub const PROMPTS_NS: &str = "renewal.prompt";

/// Entries listed in one digest; the rest are counted ("+3 more").
const DIGEST_LINES: usize = 4;

/// One renewal prompt, as `tblPolicyRenewals` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub policy: Id,
    pub family: Id,
    /// The window (day) the prompt was raised.
    pub date: NaiveDate,
    pub renewal_date: NaiveDate,
    /// The officer after substitution, if any.
    pub officer: Option<Id>,
    /// The product the renewal would be sold as, after conversion, if one is on sale.
    pub product: Option<Id>,
    /// `renewal::WARN_*` bits.
    pub warnings: u8,
    /// For the digest line: the head's CHFID and last name.
    pub chfid: String,
    pub head_name: String,
}

pub(crate) struct Lookups {
    pub products: HashMap<Id, Product>,
    pub officers: HashMap<Id, Officer>,
}

impl Lookups {
    pub fn load(store: &Store) -> Result<Lookups, StoreError> {
        Ok(Lookups {
            products: store.products()?.into_iter().map(|p| (p.id, p)).collect(),
            officers: store.officers()?.into_iter().map(|o| (o.id, o)).collect(),
        })
    }

    /// The product a renewal of `policy` would be sold as.
    pub fn renewal_product(&self, policy: &Policy) -> Option<&Product> {
        let product = self.products.get(&policy.product)?;
        renewal_product(|id| self.products.get(&id), product, renewal_date(policy)).ok()
    }
}

/// Cheap pre-filter before reading the family: status and date only.
pub(crate) fn near_expiry(p: &Policy, window: NaiveDate, days_before: u32) -> bool {
    matches!(p.status, PolicyStatus::Active | PolicyStatus::Expired)
        && (p.expiry_date - window).num_days() <= i64::from(days_before)
}

/// What both policy jobs (prompts, reminders) start from: the lookups, and the policies
/// near expiry on `window` (see [`near_expiry`]) that `pick` keeps, with what it says of each.
pub(crate) fn due_policies<T>(
    store: &Store,
    window: NaiveDate,
    days_before: u32,
    mut pick: impl FnMut(&Policy) -> Option<T>,
) -> Result<(Lookups, Vec<(Policy, T)>), StoreError> {
    let look = Lookups::load(store)?;
    let mut due = Vec::new();
    store.for_each_policy(|p| {
        if near_expiry(&p, window, days_before) {
            if let Some(t) = pick(&p) {
                due.push((p, t));
            }
        }
        Ok(true)
    })?;
    Ok((look, due))
}

pub fn run(run: SmsJobRun<'_>) -> Result<(), SchedulerError> {
    let (s, window, now, report) = (run.scheduler, run.window, run.now, run.report);
    let interval = s.config.renewal_interval_days;
    let store = &s.store;
    let (look, candidates) = due_policies(store, window, interval, |_| Some(()))?;
    // By officer (None: no officer), policy id order, so digests are stable.
    let mut by_officer: BTreeMap<Option<Id>, Vec<Prompt>> = BTreeMap::new();
    for (p, ()) in candidates {
        report.examined += 1;
        if store.aux_get(PROMPTS_NS, &p.id.to_be_bytes())?.is_some() {
            continue;
        }
        let family_policies = store.family_policies(p.family)?;
        if !needs_renewal_prompt(&p, &family_policies, window, interval) {
            continue;
        }
        let product = look.renewal_product(&p).map(|x| x.id);
        let officer = p
            .officer
            .and_then(|id| effective_officer(|o| look.officers.get(&o), id, window));
        let warnings = renewal_warnings(product.is_some(), officer, window);
        let (chfid, head_name) = match store.family(p.family)? {
            Some(f) => match store.insuree(f.head)? {
                Some(h) => (h.chfid.to_string(), h.last_name),
                None => (String::new(), String::new()),
            },
            None => (String::new(), String::new()),
        };
        by_officer
            .entry(officer.map(|o| o.id))
            .or_default()
            .push(Prompt {
                policy: p.id,
                family: p.family,
                date: window,
                renewal_date: renewal_date(&p),
                officer: officer.map(|o| o.id),
                product,
                warnings,
                chfid,
                head_name,
            });
    }
    for (officer_id, prompts) in by_officer {
        let officer = officer_id.and_then(|id| look.officers.get(&id));
        let digest = match officer {
            Some(o) if o.phone_communication => match &o.phone {
                Some(phone) => Some(digest(s, o, phone, window, &prompts)?),
                None => None,
            },
            _ => None,
        };
        if report.dry_run {
            for p in &prompts {
                report.planned.push(format!(
                    "prompt policy {} (CHFID {}) officer {} warnings {}",
                    p.policy,
                    p.chfid,
                    officer.map(|o| o.code.as_str()).unwrap_or("-"),
                    p.warnings
                ));
            }
            if let Some(sms) = &digest {
                report
                    .planned
                    .push(format!("SMS {} {:?}", sms.to.masked(), sms.text));
                report.sms += 1;
            }
            report.changed += prompts.len() as u64;
            continue;
        }
        let key = format!("renewal-digest:{}:{window}", officer_id.unwrap_or(0));
        let (added, sent) = store.write_at(now, |tx| -> TxResult<(u64, bool), Infallible> {
            let mut added = 0;
            for p in &prompts {
                let k = p.policy.to_be_bytes();
                if tx.aux_get(PROMPTS_NS, &k)?.is_some() {
                    continue;
                }
                let bytes = codec::encode_aux(p).map_err(TxError::from)?;
                tx.aux_put(PROMPTS_NS, &k, &bytes)?;
                added += 1;
            }
            let mut sent = false;
            if let (Some(sms), true) = (&digest, added > 0) {
                enqueue(tx, &key, sms)?;
                sent = true;
            }
            Ok((added, sent))
        })?;
        report.changed += added;
        report.sms += u64::from(sent);
    }
    Ok(())
}

fn digest(
    s: &Scheduler,
    officer: &Officer,
    phone: &Msisdn,
    window: NaiveDate,
    prompts: &[Prompt],
) -> Result<OutboundSms, SchedulerError> {
    let lines: Vec<String> = prompts
        .iter()
        .take(DIGEST_LINES)
        .map(|p| {
            format!(
                "{} {} {}",
                p.chfid,
                p.head_name,
                p.renewal_date.format("%d/%m")
            )
        })
        .collect();
    let more = prompts.len().saturating_sub(DIGEST_LINES);
    let vars: HashMap<&str, String> = HashMap::from([
        ("count", prompts.len().to_string()),
        ("list", lines.join("; ")),
        ("more", more.to_string()),
        ("officer", officer.code.clone()),
    ]);
    let text = s
        .templates
        .render("renewal_digest", officer.language, &vars)?;
    Ok(OutboundSms {
        to: phone.clone(),
        text,
        template: "renewal_digest".into(),
        language: officer.language,
        reference: format!("renewal-digest:{}:{window}", officer.id),
    })
}
