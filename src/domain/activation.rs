//! What a payment does to a policy: activate it, or leave it waiting with a balance.
//!
//! Owns: the activation decision for a contribution (full payment → Active from
//! max(start, pay date); less → still Idle with the balance owed) and copying the policy's
//! effective date to its members' coverage rows.
//! Must never: write the policy or premium (the caller records both in one transaction),
//! or activate a suspended or expired policy.
//!
//! Where the sources disagree (reference §2.5), we follow the web app and the manual:
//! effective date = max(start, pay date) for exact and over-payments alike. Django uses the
//! pay date for an over-payment (a policy paid early would then start covering before its
//! start date); `uspAPIEnterContribution` always uses the pay date and `uspMatchPayment`
//! always the start date. Whether activation yields Active or Ready (`ActivationOption`) and
//! whether the pay date is inside `period::last_date_for_payment` are the caller's policy.

use chrono::NaiveDate;

use super::model::{Id, InsureePolicy, Policy, PolicyStatus};
use super::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Fully paid: the policy covers from `effective_date`. `surplus` is what was paid over
    /// the value (zero for an exact payment), to be reported, not silently kept.
    Activated {
        effective_date: NaiveDate,
        surplus: Money,
    },
    /// Not yet fully paid: the policy stays Idle and `balance` is still owed.
    Underpaid { balance: Money },
    /// Already Active: the payment is a contribution on record but changes no dates.
    AlreadyActive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    #[error("This policy is suspended and cannot be paid; please contact your enrolment officer")]
    Suspended,
    #[error("This policy has expired and cannot be paid; please renew it")]
    Expired,
    #[error("Payment amount {0} is not valid")]
    NotPositive(Money),
}

/// Applies `payment`, made on `pay_date`, to `policy`, of which `already_paid` (non-photo
/// premiums) had been paid before. Installments add up through `already_paid`.
pub fn apply_payment(
    policy: &Policy,
    already_paid: Money,
    payment: Money,
    pay_date: NaiveDate,
) -> Result<Activation, ActivationError> {
    if !payment.is_positive() {
        return Err(ActivationError::NotPositive(payment));
    }
    match policy.status {
        PolicyStatus::Idle | PolicyStatus::Ready => {}
        PolicyStatus::Active => return Ok(Activation::AlreadyActive),
        PolicyStatus::Suspended => return Err(ActivationError::Suspended),
        PolicyStatus::Expired => return Err(ActivationError::Expired),
    }
    let paid = already_paid + payment;
    if paid < policy.value {
        return Ok(Activation::Underpaid {
            balance: policy.value - paid,
        });
    }
    Ok(Activation::Activated {
        effective_date: policy.start_date.max(pay_date),
        surplus: paid - policy.value,
    })
}

/// The coverage rows of policy `policy` that activation changes, with `effective_date` set:
/// only rows still without one. A member whose row already has a date keeps it, as
/// `UPDATE tblInsureePolicy … WHERE EffectiveDate IS NULL` does.
pub fn cover_members(
    policy: Id,
    effective_date: NaiveDate,
    rows: &[InsureePolicy],
) -> Vec<InsureePolicy> {
    rows.iter()
        .filter(|r| r.policy == policy && r.effective_date.is_none())
        .map(|r| InsureePolicy {
            effective_date: Some(effective_date),
            ..r.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{d, insuree_policy, policy};
    use Activation::{Activated, AlreadyActive, Underpaid};

    /// `Activated` from `effective_date`, with `surplus` shillings over.
    fn active(effective_date: NaiveDate, surplus: i64) -> Activation {
        Activated {
            effective_date,
            surplus: Money::tzs(surplus),
        }
    }

    /// `Underpaid`, `balance` still owed.
    fn short(balance: Money) -> Activation {
        Underpaid { balance }
    }

    /// Idle, worth 30,000, starting 1 Jan 2024.
    fn idle() -> Policy {
        Policy {
            status: PolicyStatus::Idle,
            effective_date: None,
            ..policy()
        }
    }

    #[test]
    fn payments_against_an_idle_policy() {
        let p = idle();
        let tzs = Money::tzs;
        // One line a case: (shillings paid before, this payment, paid on, outcome).
        let cases = [
            // Exact, paid before the start (10 Dec): covers from the start, 1 Jan.
            (0, 30_000, d(2023, 12, 10), active(d(2024, 1, 1), 0)),
            // Exact, paid after the start (15 Jan): covers from the pay date.
            (0, 30_000, d(2024, 1, 15), active(d(2024, 1, 15), 0)),
            // Paid on the start date itself.
            (0, 30_000, d(2024, 1, 1), active(d(2024, 1, 1), 0)),
            // Under: 30,000 − 20,000 = 10,000 still owed.
            (0, 20_000, d(2024, 1, 15), short(tzs(10_000))),
            // Over: 35,000 − 30,000 = 5,000 surplus; dates as for an exact payment.
            (0, 35_000, d(2023, 12, 10), active(d(2024, 1, 1), 5_000)),
            // Second installment: 20,000 before + 10,000 now = 30,000 → active.
            (20_000, 10_000, d(2024, 2, 1), active(d(2024, 2, 1), 0)),
            // Second installment still short: 30,000 − (10,000 + 10,000) = 10,000.
            (10_000, 10_000, d(2024, 2, 1), short(tzs(10_000))),
        ];
        for (before, payment, on, want) in cases {
            let (before, payment) = (tzs(before), tzs(payment));
            assert_eq!(
                apply_payment(&p, before, payment, on),
                Ok(want),
                "{before} + {payment} on {on}"
            );
        }
        // A cent short is short.
        assert_eq!(
            apply_payment(&p, tzs(0), Money(2_999_999), d(2024, 1, 1)),
            Ok(short(Money(1)))
        );
    }

    #[test]
    fn installments_accumulate_to_activation() {
        let p = idle();
        let mut paid = Money::ZERO;
        let mut outcomes = Vec::new();
        // Three installments of 10,000: 20,000, 10,000 owed, then active on the third date.
        for (amount, on) in [
            (10_000, d(2023, 11, 1)),
            (10_000, d(2023, 12, 1)),
            (10_000, d(2024, 1, 20)),
        ] {
            outcomes.push(apply_payment(&p, paid, Money::tzs(amount), on).unwrap());
            paid += Money::tzs(amount);
        }
        assert_eq!(
            outcomes,
            [
                short(Money::tzs(20_000)),
                short(Money::tzs(10_000)),
                active(d(2024, 1, 20), 0),
            ]
        );
    }

    #[test]
    fn only_idle_or_ready_policies_activate() {
        let pay = |status| {
            let p = Policy { status, ..idle() };
            apply_payment(&p, Money::ZERO, Money::tzs(30_000), d(2024, 1, 5))
        };
        assert!(matches!(pay(PolicyStatus::Ready), Ok(Activated { .. })));
        assert_eq!(pay(PolicyStatus::Active), Ok(AlreadyActive));
        assert_eq!(
            pay(PolicyStatus::Suspended),
            Err(ActivationError::Suspended)
        );
        assert_eq!(pay(PolicyStatus::Expired), Err(ActivationError::Expired));
    }

    #[test]
    fn zero_or_negative_payments_are_refused() {
        for amount in [Money::ZERO, Money(-100)] {
            assert_eq!(
                apply_payment(&idle(), Money::ZERO, amount, d(2024, 1, 1)),
                Err(ActivationError::NotPositive(amount))
            );
        }
    }

    #[test]
    fn cover_members_fills_only_missing_dates_of_this_policy() {
        let expiry = d(2024, 12, 31);
        let already = insuree_policy(1, Some(d(2024, 1, 1)), expiry);
        let waiting = insuree_policy(2, None, expiry);
        let other_policy = InsureePolicy {
            policy: 2,
            ..insuree_policy(3, None, expiry)
        };
        let changed = cover_members(1, d(2024, 1, 15), &[already, waiting.clone(), other_policy]);
        assert_eq!(
            changed,
            [InsureePolicy {
                effective_date: Some(d(2024, 1, 15)),
                ..waiting
            }]
        );
    }
}
