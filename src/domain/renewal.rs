//! Who should be reminded to renew, and by which officer: `uspPolicyRenewalInserts`.
//!
//! Owns: whether a policy is due a renewal prompt, the renewal warning bits, and following
//! the officer substitution chain (`OfficerIDSubst`) past officers who have stopped working.
//! Must never: read a clock, send anything, or loop forever on a substitution cycle.
//!
//! "No later policy of the same family and product" (reference §2.7) needs a reading of
//! "later" and of which statuses count, which the sources leave open. We read it as: another
//! policy of that family and product that starts after this one expires, expires after it,
//! or was enrolled after it, in any status except Suspended. An Idle or Ready successor counts
//! because the renewal is already under way: prompting again invites a duplicate policy
//! (`uspAPIRenewPolicy` can start an early renewal before the old expiry, hence the enrol
//! date test). A Suspended successor does not count: that attempt failed, the family is
//! still uncovered, and a suspended policy is never prompted itself, so letting it silence
//! the prompt would drop the family from renewal follow-up for good.

use chrono::NaiveDate;

use super::dates::add_days;
use super::model::{Id, Officer, Policy, PolicyStatus};

/// `PolicyRenewalInterval` default (days before expiry when prompting starts).
pub const DEFAULT_RENEWAL_INTERVAL_DAYS: u32 = 14;

/// Warning bit: the product (after conversion) cannot be sold on the renewal date.
pub const WARN_NO_PRODUCT: u8 = 1;
/// Warning bit: the policy has no officer (or the officer is unknown).
pub const WARN_NO_OFFICER: u8 = 2;
/// Warning bit: the officer (after substitution) no longer works.
pub const WARN_INVALID_OFFICER: u8 = 4;

/// Substitution chains are a hand-over or two; a longer one is a misconfiguration.
const MAX_SUBSTITUTIONS: usize = 16;

/// Whether `policy` is due a renewal prompt on `today`. `family_policies` are the family's
/// policies (others are ignored, and so is `policy` itself if present).
pub fn needs_renewal_prompt(
    policy: &Policy,
    family_policies: &[Policy],
    today: NaiveDate,
    interval_days: u32,
) -> bool {
    if !matches!(policy.status, PolicyStatus::Active | PolicyStatus::Expired) {
        return false;
    }
    // Negative for an already expired policy, which is therefore always within the interval.
    let days_left = (policy.expiry_date - today).num_days();
    if days_left > i64::from(interval_days) {
        return false;
    }
    !family_policies
        .iter()
        .any(|other| is_successor(policy, other))
}

/// The date a renewal of `policy` takes effect when made on time.
pub fn renewal_date(policy: &Policy) -> NaiveDate {
    add_days(policy.expiry_date, 1)
}

/// The `tblPolicyRenewals.RenewalWarnings` bitmask.
pub fn renewal_warnings(product_ok: bool, officer: Option<&Officer>, today: NaiveDate) -> u8 {
    let mut bits = 0;
    if !product_ok {
        bits |= WARN_NO_PRODUCT;
    }
    match officer {
        None => bits |= WARN_NO_OFFICER,
        Some(o) if !is_working(o, today) => bits |= WARN_INVALID_OFFICER,
        Some(_) => {}
    }
    bits
}

/// The officer who should handle a renewal for `officer_id` on `today`: the officer while
/// they work, else their substitute, and so on. Returns the last officer reached, who may
/// still not be working (the chain ran out, looped, or named an unknown officer) so that
/// [`renewal_warnings`] can say so; `None` only if `officer_id` itself is unknown.
pub fn effective_officer<'a, F>(lookup: F, officer_id: Id, today: NaiveDate) -> Option<&'a Officer>
where
    F: Fn(Id) -> Option<&'a Officer>,
{
    let mut current = lookup(officer_id)?;
    let mut seen = vec![current.id];
    while !is_working(current, today) && seen.len() <= MAX_SUBSTITUTIONS {
        let Some(next_id) = current.substitute else {
            break;
        };
        if seen.contains(&next_id) {
            break;
        }
        let Some(next) = lookup(next_id) else {
            break;
        };
        seen.push(next_id);
        current = next;
    }
    Some(current)
}

/// `WorksTo` is the last working day, so the officer still works on it.
fn is_working(officer: &Officer, today: NaiveDate) -> bool {
    officer.works_to.is_none_or(|last| today <= last)
}

fn is_successor(policy: &Policy, other: &Policy) -> bool {
    other.id != policy.id
        && other.family == policy.family
        && other.product == policy.product
        && other.status != PolicyStatus::Suspended
        && (other.start_date > policy.expiry_date
            || other.expiry_date > policy.expiry_date
            || other.enroll_date > policy.enroll_date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{d, officer, policy};
    use std::collections::HashMap;

    /// The renewal of `policy()` (which covers 2024): 2025, Idle, id 2.
    fn next_year(status: PolicyStatus) -> Policy {
        Policy {
            id: 2,
            status,
            enroll_date: d(2024, 12, 20),
            start_date: d(2025, 1, 1),
            effective_date: None,
            expiry_date: d(2025, 12, 31),
            ..policy()
        }
    }

    #[test]
    fn prompt_window() {
        let p = policy(); // Active, expires 31 Dec 2024
        let cases = [
            // 31 Dec − 16 Dec = 15 days > 14: too early.
            (d(2024, 12, 16), false),
            // 31 Dec − 17 Dec = 14 days: inside the window.
            (d(2024, 12, 17), true),
            (d(2024, 12, 31), true), // expiry day: 0
            (d(2025, 3, 1), true),   // already expired: negative
        ];
        for (today, want) in cases {
            assert_eq!(
                needs_renewal_prompt(
                    &p,
                    std::slice::from_ref(&p),
                    today,
                    DEFAULT_RENEWAL_INTERVAL_DAYS
                ),
                want,
                "{today}"
            );
        }
        // A different interval moves the window: 31 Dec − 1 Dec = 30 ≤ 30.
        assert!(needs_renewal_prompt(&p, &[], d(2024, 12, 1), 30));
        assert!(!needs_renewal_prompt(&p, &[], d(2024, 12, 1), 29));
    }

    #[test]
    fn only_active_or_expired_policies_are_prompted() {
        let today = d(2024, 12, 25);
        for (status, want) in [
            (PolicyStatus::Active, true),
            (PolicyStatus::Expired, true),
            (PolicyStatus::Idle, false),
            (PolicyStatus::Suspended, false),
            (PolicyStatus::Ready, false),
        ] {
            let p = Policy { status, ..policy() };
            assert_eq!(needs_renewal_prompt(&p, &[], today, 14), want, "{status:?}");
        }
    }

    #[test]
    fn a_later_policy_silences_the_prompt() {
        let p = policy();
        let today = d(2024, 12, 25);
        let prompt = |family: &[Policy]| needs_renewal_prompt(&p, family, today, 14);
        // Renewal under way (Idle), paid (Active), waiting (Ready) or itself expired: silent.
        for status in [
            PolicyStatus::Idle,
            PolicyStatus::Active,
            PolicyStatus::Ready,
            PolicyStatus::Expired,
        ] {
            assert!(!prompt(&[p.clone(), next_year(status)]), "{status:?}");
        }
        // A suspended renewal failed: prompt again.
        assert!(prompt(&[next_year(PolicyStatus::Suspended)]));
        // An early renewal that starts before this one's expiry, but was enrolled later.
        let early = Policy {
            start_date: d(2024, 12, 20),
            expiry_date: d(2024, 12, 31),
            ..next_year(PolicyStatus::Idle)
        };
        assert!(!prompt(&[early]));
        // Another product, or another family, does not count.
        let other_product = Policy {
            product: 9,
            ..next_year(PolicyStatus::Active)
        };
        let other_family = Policy {
            family: 9,
            ..next_year(PolicyStatus::Active)
        };
        assert!(prompt(&[other_product, other_family]));
        // An older policy of the same product does not count either.
        let older = Policy {
            id: 0,
            enroll_date: d(2022, 12, 15),
            start_date: d(2023, 1, 1),
            expiry_date: d(2023, 12, 31),
            status: PolicyStatus::Expired,
            ..policy()
        };
        assert!(prompt(&[older]));
        assert_eq!(renewal_date(&p), d(2025, 1, 1));
    }

    #[test]
    fn warnings_bitmask() {
        let today = d(2024, 12, 25);
        let working = officer(1);
        let left = Officer {
            works_to: Some(d(2024, 12, 24)),
            ..officer(2)
        };
        let last_day = Officer {
            works_to: Some(today),
            ..officer(3)
        };
        let cases = [
            (true, Some(&working), 0),
            (false, Some(&working), WARN_NO_PRODUCT),
            (true, None, WARN_NO_OFFICER),
            (false, None, WARN_NO_PRODUCT | WARN_NO_OFFICER), // 1 + 2 = 3
            (true, Some(&left), WARN_INVALID_OFFICER),
            (false, Some(&left), WARN_NO_PRODUCT | WARN_INVALID_OFFICER), // 1 + 4 = 5
            (true, Some(&last_day), 0),                                   // still works on WorksTo
        ];
        for (product_ok, o, want) in cases {
            assert_eq!(
                renewal_warnings(product_ok, o, today),
                want,
                "{product_ok} {:?}",
                o.map(|o| o.id)
            );
        }
    }

    #[test]
    fn substitution_chain() {
        let today = d(2024, 12, 25);
        let gone = |id: Id, substitute: Option<Id>| Officer {
            works_to: Some(d(2024, 6, 30)),
            substitute,
            ..officer(id)
        };
        // 1 (left) → 2 (left) → 3 (working); 4 (left) → 5 (left) → 4: a loop;
        // 6 (left, no substitute); 7 (left) → 99 (unknown); 8 working with a substitute.
        let officers: HashMap<Id, Officer> = [
            gone(1, Some(2)),
            gone(2, Some(3)),
            officer(3),
            gone(4, Some(5)),
            gone(5, Some(4)),
            gone(6, None),
            gone(7, Some(99)),
            Officer {
                substitute: Some(3),
                ..officer(8)
            },
        ]
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
        let lookup = |id: Id| officers.get(&id);
        let cases = [
            (1, Some(3)), // two hand-overs
            (3, Some(3)),
            (8, Some(8)), // working: the substitute is not used
            (4, Some(5)), // loop: stops at the last new officer, who is not working
            (6, Some(6)), // nobody to hand over to
            (7, Some(7)), // substitute unknown
            (42, None),
        ];
        for (start, want) in cases {
            assert_eq!(
                effective_officer(lookup, start, today).map(|o| o.id),
                want,
                "from {start}"
            );
        }
        // The loop's end is flagged as an invalid officer.
        let end = effective_officer(lookup, 4, today);
        assert_eq!(renewal_warnings(true, end, today), WARN_INVALID_OFFICER);
        // Before officer 1 left, officer 1 handles it.
        let earlier = effective_officer(lookup, 1, d(2024, 6, 30)).map(|o| o.id);
        assert_eq!(earlier, Some(1));
    }
}
