//! PENDING / SUBIRI: the officer's families due for renewal (the renewal-prompt rule: paid
//! or expired policy within the renewal interval of its expiry, or past it, and no later
//! policy of the product), including those of officers they substitute; paged so that each
//! page fits in 2 SMS.
//!
//! Owns: aux namespace [`NS_OFFICER_POLICIES`] (`officer id ‖ policy id` → ""), written
//! with every policy this module creates and backfilled at start from all policies (the
//! store has no officer → policy index).

use super::plan::Plan;
use super::{auth, full_name, Ctx, OfficerError, MAX_SEGMENTS};
use crate::domain::show_date;
use crate::domain::{needs_renewal_prompt, Id, Policy, DEFAULT_RENEWAL_INTERVAL_DAYS};
use crate::sms::segment::segment_count;
use crate::store::{Store, StoreError};

pub const NS_OFFICER_POLICIES: &str = "officer.policies";

pub fn officer_policy_key(officer: Id, policy: Id) -> Vec<u8> {
    let mut k = officer.to_be_bytes().to_vec();
    k.extend_from_slice(&policy.to_be_bytes());
    k
}

/// Indexes every stored policy that names an officer; returns how many were missing.
pub fn backfill(store: &Store) -> Result<usize, StoreError> {
    let mut missing = Vec::new();
    store.for_each_policy(|p| {
        if let Some(o) = p.officer {
            let k = officer_policy_key(o, p.id);
            if store.aux_get(NS_OFFICER_POLICIES, &k)?.is_none() {
                missing.push(k);
            }
        }
        Ok(true)
    })?;
    for k in &missing {
        store.aux_put(NS_OFFICER_POLICIES, k, b"")?;
    }
    Ok(missing.len())
}

/// The ids of the officer's policies in the index, ascending.
fn policy_ids(store: &Store, officer: Id) -> Result<Vec<Id>, StoreError> {
    let entries = store.aux_scan(NS_OFFICER_POLICIES, &officer.to_be_bytes())?;
    Ok(entries
        .iter()
        .filter_map(|(k, _)| k.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()))
        .map(u64::from_be_bytes)
        .collect())
}

/// The officer's most recent policy (highest id in the index), if any.
pub fn latest_policy_of(store: &Store, officer: Id) -> Result<Option<Policy>, StoreError> {
    for id in policy_ids(store, officer)?.into_iter().rev() {
        if let Some(p) = store.policy(id)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn policies_of(store: &Store, officer: Id) -> Result<Vec<Policy>, StoreError> {
    let mut out = Vec::new();
    for id in policy_ids(store, officer)? {
        out.extend(store.policy(id)?);
    }
    Ok(out)
}

pub fn run(ctx: &Ctx<'_>, page: u32) -> Result<Plan, OfficerError> {
    let g = ctx.grammar;
    let store = ctx.store;
    let mut officers = vec![ctx.officer.id];
    officers.extend(auth::substituted(ctx)?.into_iter().map(|o| o.id));
    let mut due: Vec<(chrono::NaiveDate, String)> = Vec::new();
    for o in officers {
        for p in policies_of(store, o)? {
            let family_policies = store.family_policies(p.family)?;
            if !needs_renewal_prompt(
                &p,
                &family_policies,
                ctx.today,
                DEFAULT_RENEWAL_INTERVAL_DAYS,
            ) {
                continue;
            }
            let Some(family) = store.family(p.family)? else {
                continue;
            };
            let Some(head) = store.insuree(family.head)? else {
                continue;
            };
            let code = store
                .product(p.product)?
                .map(|x| x.code)
                .unwrap_or_default();
            due.push((
                p.expiry_date,
                format!(
                    "{} {} {} {}",
                    head.chfid,
                    full_name(&head),
                    show_date(p.expiry_date),
                    code
                ),
            ));
        }
    }
    if due.is_empty() {
        return Ok(Plan::answer(g.text("pending_none", ctx.lang, &[])));
    }
    due.sort();
    let lines: Vec<String> = due.into_iter().map(|(_, l)| l).collect();
    let pages = paginate(ctx, &lines);
    let total = pages.len();
    let index = usize::try_from(page)
        .unwrap_or(usize::MAX)
        .saturating_sub(1)
        .min(total - 1);
    Ok(Plan::answer(render(ctx, &pages[index], index + 1, total)))
}

fn render(ctx: &Ctx<'_>, lines: &[String], page: usize, pages: usize) -> String {
    let next = if page < pages {
        ctx.grammar.text(
            "pending_next",
            ctx.lang,
            &[("page", &(page + 1).to_string())],
        )
    } else {
        String::new()
    };
    ctx.grammar.text(
        "pending",
        ctx.lang,
        &[
            ("page", &page.to_string()),
            ("pages", &pages.to_string()),
            ("lines", &lines.join("; ")),
            ("next", &next),
        ],
    )
}

/// Splits the lines into pages whose reply fits in 2 SMS (with page numbers up to 999).
fn paginate(ctx: &Ctx<'_>, lines: &[String]) -> Vec<Vec<String>> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for l in lines {
        current.push(l.clone());
        let text = render(ctx, &current, 999, 1000);
        if segment_count(&text).0 > MAX_SEGMENTS && current.len() > 1 {
            current.pop();
            pages.push(std::mem::take(&mut current));
            current.push(l.clone());
        }
    }
    if !current.is_empty() {
        pages.push(current);
    }
    pages
}
