//! Whether a patient is covered on a visit date, as a health facility must know before care.
//!
//! Owns: the eligibility rule a facility's verification applies, and the reason it gives.
//! It is openIMIS's own coverage rule (`domain::coverage`: the member's `tblInsureePolicy`
//! dates, then the policy's status as the nightly expiry batch leaves it), read for a
//! facility: one answer per patient, covered if any of their policies covers the visit date,
//! with the reason named when none does.
//!
//! What openIMIS also checks and this model does not hold (so this rule cannot):
//! - per item/service waiting periods (`tblProductItems` / `tblProductServices`
//!   `WaitingPeriodAdult` / `WaitingPeriodChild`, months from the member's effective date) and
//!   the product's limits (`MaxNoConsultation`, `MaxNoVisits`, `MaxAmountInpatient`...,
//!   `MaxInsuree`/`MaxPolicy` amounts) which the backend's item/service eligibility queries
//!   compute from claims; the gateway holds neither the price lists nor the claims. The
//!   product's `WaitingPeriod` column is the payment grace period (see `model::Product`),
//!   not a waiting period for care: a policy past it is Suspended, which this rule reads.
//! - the facility's care type against the visit's (in-/out-patient): a product covers every
//!   facility here; the answer is the same at any facility.
//!
//! Must never: read a clock (the visit date is passed in), or say covered for a day outside
//! the member's own effective..=expiry dates or under a policy that is not Active.

use chrono::NaiveDate;

use super::coverage::{coverage_letter, status_on, CoverageLetter, MemberPolicy};
use super::model::Id;

/// Why a patient is (not) covered on the visit date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Covered: an Active policy whose member row spans the visit date.
    Covered,
    /// The family has no policy at all.
    NoPolicy,
    /// The family has a policy, but this member has no row under it (added after the
    /// policy was paid, or beyond the product's member count).
    NotOnPolicy,
    /// Not (fully) paid: no effective date, or the policy is Idle.
    Unpaid,
    /// Paid, but the cover starts after the visit date.
    NotYetEffective,
    /// The cover ended before the visit date.
    Expired,
    /// Suspended (not paid within the payment grace period, or by the scheme).
    Suspended,
    /// Paid and waiting for activation (`ActivationOption` 3).
    Ready,
}

impl Reason {
    /// A stable lower-case name, for records and texts.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Covered => "covered",
            Reason::NoPolicy => "no_policy",
            Reason::NotOnPolicy => "not_on_policy",
            Reason::Unpaid => "unpaid",
            Reason::NotYetEffective => "not_yet_effective",
            Reason::Expired => "expired",
            Reason::Suspended => "suspended",
            Reason::Ready => "ready",
        }
    }

    pub fn covered(self) -> bool {
        self == Reason::Covered
    }
}

/// The answer for one patient on one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    pub reason: Reason,
    /// The policy the answer is about (`None` with [`Reason::NoPolicy`]).
    pub policy: Option<Id>,
    pub product: Option<Id>,
    /// The member's own cover end under that policy (`None` without a member row).
    pub expiry: Option<NaiveDate>,
}

/// The reason one policy gives for one member on `visit`: openIMIS's coverage letter
/// (`coverage::coverage_letter`, the one rule), with its `I` told apart.
pub fn on_policy(p: &MemberPolicy<'_>, visit: NaiveDate) -> Reason {
    let Some(row) = p.row else {
        return Reason::NotOnPolicy;
    };
    match coverage_letter(row, status_on(p.status, p.policy_expiry, visit), visit) {
        CoverageLetter::A => Reason::Covered,
        CoverageLetter::E => Reason::Expired,
        CoverageLetter::S => Reason::Suspended,
        CoverageLetter::R => Reason::Ready,
        // `I`: paid but not started yet, or not paid (no effective date, or Idle).
        CoverageLetter::I => match row.effective_date {
            Some(effective) if visit < effective => Reason::NotYetEffective,
            _ => Reason::Unpaid,
        },
    }
}

/// Covered, has a member row, the row's cover end, the policy id: higher ranks first.
type Rank = (bool, bool, Option<NaiveDate>, Id);

/// The patient's answer over all their family's policies: covered if any policy covers
/// the visit; otherwise the reason of the policy that matters most to the patient: one with
/// a member row before one without, then the latest cover end (an unpaid renewal says more
/// than the expired policy it renews), then the newest policy.
pub fn eligibility(policies: &[MemberPolicy<'_>], visit: NaiveDate) -> Eligibility {
    let mut best: Option<(Eligibility, Rank)> = None;
    for p in policies {
        let reason = on_policy(p, visit);
        let expiry = p.row.map(|r| r.expiry_date);
        let rank = (reason.covered(), p.row.is_some(), expiry, p.policy);
        if best.as_ref().is_none_or(|(_, r)| rank > *r) {
            let e = Eligibility {
                reason,
                policy: Some(p.policy),
                product: Some(p.product),
                expiry,
            };
            best = Some((e, rank));
        }
    }
    best.map(|(e, _)| e).unwrap_or(Eligibility {
        reason: Reason::NoPolicy,
        policy: None,
        product: None,
        expiry: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{d, insuree_policy};
    use crate::domain::{InsureePolicy, PolicyStatus};

    fn mp(policy: Id, status: PolicyStatus, row: Option<&InsureePolicy>) -> MemberPolicy<'_> {
        MemberPolicy {
            product: 1,
            policy,
            status,
            policy_expiry: d(2024, 12, 31),
            row,
        }
    }

    /// The worked examples: one member, cover 2024-01-01..=2024-12-31 unless said.
    #[test]
    fn one_policy_each_reason() {
        let row = insuree_policy(7, Some(d(2024, 1, 1)), d(2024, 12, 31));
        let unpaid = insuree_policy(7, None, d(2024, 12, 31));
        let june = d(2024, 6, 15);
        use PolicyStatus::*;
        let cases = [
            // Covered: Active, visit inside the member's dates (both ends included).
            (mp(1, Active, Some(&row)), june, Reason::Covered),
            (mp(1, Active, Some(&row)), d(2024, 1, 1), Reason::Covered),
            (mp(1, Active, Some(&row)), d(2024, 12, 31), Reason::Covered),
            // Expired: the day after the cover end, even if the batch left it Active.
            (mp(1, Active, Some(&row)), d(2025, 1, 1), Reason::Expired),
            (mp(1, Expired, Some(&row)), june, Reason::Expired),
            // Idle (unpaid): no effective date, or Idle status inside the dates.
            (mp(1, Idle, Some(&unpaid)), june, Reason::Unpaid),
            (mp(1, Idle, Some(&row)), june, Reason::Unpaid),
            // Suspended inside the dates.
            (mp(1, Suspended, Some(&row)), june, Reason::Suspended),
            (mp(1, Ready, Some(&row)), june, Reason::Ready),
            // Before the effective date: paid, not started.
            (
                mp(1, Active, Some(&row)),
                d(2023, 12, 31),
                Reason::NotYetEffective,
            ),
            // A member of the family with no row under the policy.
            (mp(1, Active, None), june, Reason::NotOnPolicy),
        ];
        for (p, visit, want) in cases {
            assert_eq!(on_policy(&p, visit), want, "{:?} on {visit}", p.status);
        }
    }

    #[test]
    fn covered_by_any_policy_else_the_most_telling_reason() {
        let old = insuree_policy(7, Some(d(2023, 1, 1)), d(2023, 12, 31));
        let renewal = insuree_policy(7, None, d(2024, 12, 31));
        let current = insuree_policy(7, Some(d(2024, 1, 1)), d(2024, 12, 31));
        let june = d(2024, 6, 15);
        use PolicyStatus::*;
        // Expired last year's policy and an unpaid renewal: the renewal speaks (unpaid).
        let e = eligibility(
            &[mp(1, Expired, Some(&old)), mp(2, Idle, Some(&renewal))],
            june,
        );
        assert_eq!(
            (e.reason, e.policy, e.expiry),
            (Reason::Unpaid, Some(2), Some(d(2024, 12, 31)))
        );
        // Any covering policy wins, whatever the order.
        let e = eligibility(
            &[mp(3, Active, Some(&current)), mp(2, Idle, Some(&renewal))],
            june,
        );
        assert_eq!((e.reason, e.policy), (Reason::Covered, Some(3)));
        // A member without a row: the row-less policy is the answer only when it is all.
        let e = eligibility(&[mp(4, Active, None)], june);
        assert_eq!((e.reason, e.expiry), (Reason::NotOnPolicy, None));
        let e = eligibility(&[mp(4, Active, None), mp(1, Expired, Some(&old))], june);
        assert_eq!(e.reason, Reason::Expired);
        // No policy at all.
        assert_eq!(eligibility(&[], june).reason, Reason::NoPolicy);
        assert!(!Reason::Suspended.covered());
        assert_eq!(Reason::NotOnPolicy.code(), "not_on_policy");
    }
}
