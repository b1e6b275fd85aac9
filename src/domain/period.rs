//! The dates of a policy: start, expiry, and the last day it may be paid.
//!
//! Owns: `uspGetPolicyPeriod` (new and renewal policies, cycle and free-enrolment products),
//! the renewal start rule, and `uspLastDateForPayment`.
//! Must never: read a clock, or produce an expiry before the start.
//!
//! Where the sources disagree (reference §2.1–2.3), we choose:
//! - Grace for a cycle: `grace_period_enrolment` for N and `grace_period_renewal` for R, as
//!   Django does. The SP uses the enrolment grace for both, which makes the renewal grace a
//!   setting that does nothing.
//! - Cycle boundary: strict, as in the SP: an enrol date exactly at cycle + grace belongs to
//!   the next cycle. (Django's `enroll − grace <= cycle` is inclusive.)
//! - Cycle year: the cycles are placed in the (adjusted) enrol date's year, as in the SP.
//!   Django places them in the year of `enroll − grace`; the two differ only for a December
//!   cycle whose grace runs into January, where the SP (and we) start the next December.
//! - Renewal: start = max(renewal date, previous expiry + 1 day), no administration period
//!   (the web app adds it to free-enrolment renewals, every SP treats it as N-only). A cycle
//!   product's grace can place the start before that floor; `uspIsValidRenewal` then moves
//!   the start up to the floor so the two policies do not overlap, and so do we.

use chrono::{Datelike, NaiveDate};

use super::dates::{add_days, add_months, months_end};
use super::model::{CycleStart, Policy, PolicyStage, Product};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyPeriod {
    pub start: NaiveDate,
    /// Last covered day (inclusive).
    pub expiry: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("Product {code} has an invalid cycle start {day:02}-{month:02}")]
    InvalidCycle { code: String, day: u32, month: u32 },
    #[error("Product {code} has no insurance period")]
    NoInsurancePeriod { code: String },
    #[error("Product {code}: the cycle ends on {expiry}, before the renewal could start")]
    CycleOver { code: String, expiry: NaiveDate },
}

/// `uspGetPolicyPeriod`: the period of a policy enrolled (or renewed) on `enroll_date`.
pub fn policy_period(
    product: &Product,
    enroll_date: NaiveDate,
    stage: PolicyStage,
) -> Result<PolicyPeriod, PeriodError> {
    if product.insurance_period_months == 0 {
        return Err(PeriodError::NoInsurancePeriod {
            code: product.code.clone(),
        });
    }
    let enrol = match stage {
        PolicyStage::New => add_months(enroll_date, product.administration_period_months),
        PolicyStage::Renewal => enroll_date,
    };
    let start = if product.cycles.is_empty() {
        enrol
    } else {
        cycle_start(product, enrol, stage)?
    };
    Ok(PolicyPeriod {
        start,
        expiry: months_end(start, product.insurance_period_months),
    })
}

/// The period of a renewal asked for on `renewal_date` of a policy that expires (or expired)
/// on `previous_expiry`: renewing early never shortens the running policy, renewing late
/// never back-dates past what the cycle allows.
pub fn renewal_period(
    product: &Product,
    renewal_date: NaiveDate,
    previous_expiry: NaiveDate,
) -> Result<PolicyPeriod, PeriodError> {
    let floor = add_days(previous_expiry, 1);
    let mut period = policy_period(product, renewal_date.max(floor), PolicyStage::Renewal)?;
    if period.start < floor {
        period.start = floor;
    }
    if period.expiry < period.start {
        return Err(PeriodError::CycleOver {
            code: product.code.clone(),
            expiry: period.expiry,
        });
    }
    Ok(period)
}

/// `uspLastDateForPayment`: the last day a contribution still activates `policy`.
/// For a free-enrolment renewal the window opens the day after the previous policy expired;
/// without `previous_expiry` the day before this policy's start stands in for it, which is
/// the same date whenever the renewal was made on time.
pub fn last_date_for_payment(
    product: &Product,
    policy: &Policy,
    previous_expiry: Option<NaiveDate>,
) -> NaiveDate {
    if !product.cycles.is_empty() {
        return months_end(policy.start_date, grace_months(product, policy.stage));
    }
    let waiting = product.grace_period_payment_months;
    match policy.stage {
        PolicyStage::New => months_end(policy.enroll_date, waiting),
        PolicyStage::Renewal => {
            let previous = previous_expiry.unwrap_or_else(|| add_days(policy.start_date, -1));
            months_end(add_days(previous, 1), waiting)
        }
    }
}

fn grace_months(product: &Product, stage: PolicyStage) -> u32 {
    match stage {
        PolicyStage::New => product.grace_period_enrolment_months,
        PolicyStage::Renewal => product.grace_period_renewal_months,
    }
}

/// The first cycle start (in the enrol date's year) whose grace has not yet run out on
/// `enrol`; past the last one, the first cycle of the next year.
fn cycle_start(
    product: &Product,
    enrol: NaiveDate,
    stage: PolicyStage,
) -> Result<NaiveDate, PeriodError> {
    let grace = grace_months(product, stage);
    let year = enrol.year();
    let mut starts = product
        .cycles
        .iter()
        .map(|c| cycle_date(product, *c, year))
        .collect::<Result<Vec<_>, _>>()?;
    // The SP walks StartCycle1..4 in column order; the UI enters them in calendar order.
    // Sorting makes "first" mean the earliest even when an administrator did not.
    starts.sort();
    if let Some(start) = starts.iter().find(|s| enrol < add_months(**s, grace)) {
        return Ok(*start);
    }
    match product.cycles.iter().min_by_key(|c| (c.month, c.day)) {
        Some(first) => cycle_date(product, *first, year.saturating_add(1)),
        // No cycles is a free-enrolment product; callers do not get here, but if one did,
        // the free-enrolment answer is the right one.
        None => Ok(enrol),
    }
}

/// A 'DD-MM' cycle start in `year`. 29-02 is a valid cycle that lands on 28-02 in common
/// years (as `DATEADD` would put it); a day that exists in no year, such as 30-02, is an error.
fn cycle_date(product: &Product, cycle: CycleStart, year: i32) -> Result<NaiveDate, PeriodError> {
    let invalid = || PeriodError::InvalidCycle {
        code: product.code.clone(),
        day: cycle.day,
        month: cycle.month,
    };
    if cycle.month == 2 && cycle.day == 29 {
        return NaiveDate::from_ymd_opt(year, 2, 29)
            .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .ok_or_else(invalid);
    }
    NaiveDate::from_ymd_opt(year, cycle.month, cycle.day).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{cycle, d, policy, product};
    use PolicyStage::{New as N, Renewal as R};

    fn period(start: NaiveDate, expiry: NaiveDate) -> PolicyPeriod {
        PolicyPeriod { start, expiry }
    }

    /// Cycles 1 Jan and 1 Jul, 12 months, 2 months enrolment grace, 1 month renewal grace.
    fn cycled() -> Product {
        Product {
            cycles: vec![cycle(1, 1), cycle(1, 7)],
            grace_period_enrolment_months: 2,
            grace_period_renewal_months: 1,
            ..product()
        }
    }

    #[test]
    fn free_enrolment_starts_on_the_enrol_date() {
        let p = product(); // 12 months, no admin period
        let cases = [
            // 15 Mar 2024 + 12 months − 1 day = 14 Mar 2025.
            (d(2024, 3, 15), period(d(2024, 3, 15), d(2025, 3, 14))),
            // 29 Feb 2024 + 12 months = 28 Feb 2025 (clamped); − 1 day = 27 Feb 2025.
            (d(2024, 2, 29), period(d(2024, 2, 29), d(2025, 2, 27))),
            // 1 Jan + 12 months − 1 day = 31 Dec.
            (d(2024, 1, 1), period(d(2024, 1, 1), d(2024, 12, 31))),
        ];
        for (enrol, want) in cases {
            assert_eq!(policy_period(&p, enrol, N), Ok(want), "{enrol}");
        }
        // 31 Jan + 1 month = 29 Feb 2024; − 1 day = 28 Feb.
        let monthly = Product {
            insurance_period_months: 1,
            ..product()
        };
        assert_eq!(
            policy_period(&monthly, d(2024, 1, 31), N),
            Ok(period(d(2024, 1, 31), d(2024, 2, 28)))
        );
    }

    #[test]
    fn administration_period_applies_to_new_policies_only() {
        let p = Product {
            administration_period_months: 1,
            ..product()
        };
        // N: 31 Jan + 1 month admin = 29 Feb 2024; expiry 29 Feb + 12 months − 1 = 27 Feb 2025.
        assert_eq!(
            policy_period(&p, d(2024, 1, 31), N),
            Ok(period(d(2024, 2, 29), d(2025, 2, 27)))
        );
        // R: no admin period; 31 Jan 2024 + 12 months − 1 = 30 Jan 2025.
        assert_eq!(
            policy_period(&p, d(2024, 1, 31), R),
            Ok(period(d(2024, 1, 31), d(2025, 1, 30)))
        );
        // For a cycle product the admin period can push the enrol date out of a grace window:
        // 15 Feb + 1 month = 15 Mar, not < 1 Jan + 2 months = 1 Mar → the July cycle.
        let c = Product {
            administration_period_months: 1,
            ..cycled()
        };
        assert_eq!(
            policy_period(&c, d(2024, 2, 15), N),
            Ok(period(d(2024, 7, 1), d(2025, 6, 30)))
        );
    }

    #[test]
    fn cycle_boundaries_are_strict() {
        let p = cycled(); // N grace 2 months: Jan cycle open until 1 Mar, Jul until 1 Sep.
        let cases = [
            // Before the first cycle: it is the first whose grace is open.
            (d(2023, 12, 20), d(2024, 1, 1)),
            (d(2024, 1, 1), d(2024, 1, 1)),
            // 29 Feb < 1 Jan + 2 months (1 Mar): still the January cycle, back-dated.
            (d(2024, 2, 29), d(2024, 1, 1)),
            // 1 Mar is not < 1 Mar: the July cycle.
            (d(2024, 3, 1), d(2024, 7, 1)),
            (d(2024, 8, 31), d(2024, 7, 1)),
            // 1 Sep is not < 1 Jul + 2 months: first cycle of next year.
            (d(2024, 9, 1), d(2025, 1, 1)),
        ];
        for (enrol, start) in cases {
            let got = policy_period(&p, enrol, N).unwrap();
            assert_eq!(got.start, start, "enrol {enrol}");
            // start + 12 months − 1 day
            assert_eq!(got.expiry, months_end(start, 12));
        }
    }

    #[test]
    fn cycle_renewals_use_the_renewal_grace() {
        let p = cycled(); // R grace 1 month: Jan cycle open until 1 Feb.
                          // 15 Feb: N would still join January (< 1 Mar); R has missed it (not < 1 Feb).
        assert_eq!(
            policy_period(&p, d(2024, 2, 15), N).unwrap().start,
            d(2024, 1, 1)
        );
        assert_eq!(
            policy_period(&p, d(2024, 2, 15), R).unwrap().start,
            d(2024, 7, 1)
        );
        // 31 Jan < 1 Feb: R still joins January.
        assert_eq!(
            policy_period(&p, d(2024, 1, 31), R).unwrap().start,
            d(2024, 1, 1)
        );
    }

    #[test]
    fn cycles_out_of_order_and_leap_day_cycles() {
        let p = Product {
            cycles: vec![cycle(1, 7), cycle(1, 1)],
            grace_period_enrolment_months: 1,
            ..product()
        };
        // Sorted: 15 Jan < 1 Jan + 1 month → January, not July.
        assert_eq!(
            policy_period(&p, d(2024, 1, 15), N).unwrap().start,
            d(2024, 1, 1)
        );
        let leap = Product {
            cycles: vec![cycle(29, 2)],
            ..product()
        };
        // 2024 has 29 Feb; grace 0 so 29 Feb < 29 Feb is false → next year's cycle, 28 Feb 2025.
        assert_eq!(
            policy_period(&leap, d(2024, 2, 29), N).unwrap().start,
            d(2025, 2, 28)
        );
        assert_eq!(
            policy_period(&leap, d(2023, 1, 10), N).unwrap().start,
            d(2023, 2, 28)
        );
    }

    #[test]
    fn invalid_products_are_errors() {
        let bad = Product {
            cycles: vec![cycle(1, 1), cycle(30, 2)],
            ..product()
        };
        assert_eq!(
            policy_period(&bad, d(2024, 1, 10), N),
            Err(PeriodError::InvalidCycle {
                code: "CHF1".into(),
                day: 30,
                month: 2
            })
        );
        let month13 = Product {
            cycles: vec![cycle(1, 13)],
            ..product()
        };
        assert!(policy_period(&month13, d(2024, 1, 10), N).is_err());
        let zero = Product {
            insurance_period_months: 0,
            ..product()
        };
        assert_eq!(
            policy_period(&zero, d(2024, 1, 10), N),
            Err(PeriodError::NoInsurancePeriod {
                code: "CHF1".into()
            })
        );
    }

    #[test]
    fn renewal_free_enrolment_early_and_late() {
        let p = Product {
            administration_period_months: 3, // must not apply to renewals
            ..product()
        };
        let prev = d(2024, 12, 31);
        let cases = [
            // Early (10 Dec): start = prev expiry + 1 = 1 Jan 2025; expiry 31 Dec 2025.
            (d(2024, 12, 10), period(d(2025, 1, 1), d(2025, 12, 31))),
            // On the day after expiry: the same.
            (d(2025, 1, 1), period(d(2025, 1, 1), d(2025, 12, 31))),
            // Late (20 Feb): coverage restarts on the renewal date; 20 Feb + 12 − 1 = 19 Feb.
            (d(2025, 2, 20), period(d(2025, 2, 20), d(2026, 2, 19))),
        ];
        for (on, want) in cases {
            assert_eq!(renewal_period(&p, on, prev), Ok(want), "renewed {on}");
        }
    }

    #[test]
    fn renewal_cycle_product() {
        let p = cycled(); // R grace 1 month
        let prev = d(2024, 12, 31);
        // Early: enrol raised to 1 Jan 2025 < 1 Jan + 1 month → January 2025 cycle.
        assert_eq!(
            renewal_period(&p, d(2024, 12, 1), prev),
            Ok(period(d(2025, 1, 1), d(2025, 12, 31)))
        );
        // Late within the grace (20 Jan < 1 Feb): back-dated to the cycle start, no gap.
        assert_eq!(
            renewal_period(&p, d(2025, 1, 20), prev),
            Ok(period(d(2025, 1, 1), d(2025, 12, 31)))
        );
        // Late past the grace (10 Feb): the July cycle.
        assert_eq!(
            renewal_period(&p, d(2025, 2, 10), prev),
            Ok(period(d(2025, 7, 1), d(2026, 6, 30)))
        );
        // Previous policy from a free product ended mid-cycle (14 Jan 2025): the January
        // cycle is still open (15 Jan < 1 Feb) but starting on 1 Jan would overlap, so the
        // start moves to 15 Jan and the policy ends with its cycle.
        assert_eq!(
            renewal_period(&p, d(2025, 1, 5), d(2025, 1, 14)),
            Ok(period(d(2025, 1, 15), d(2025, 12, 31)))
        );
    }

    #[test]
    fn renewal_whose_cycle_is_already_over() {
        // 1-month policies on a yearly cycle with a 3-month renewal grace: renewing on
        // 1 Mar joins the 1 Jan cycle (1 Mar < 1 Apr), which ended on 31 Jan.
        let p = Product {
            cycles: vec![cycle(1, 1)],
            insurance_period_months: 1,
            grace_period_renewal_months: 3,
            ..product()
        };
        assert_eq!(
            renewal_period(&p, d(2025, 3, 1), d(2025, 2, 28)),
            Err(PeriodError::CycleOver {
                code: "CHF1".into(),
                expiry: d(2025, 1, 31)
            })
        );
    }

    #[test]
    fn last_date_for_payment_rules() {
        let free = Product {
            grace_period_payment_months: 2,
            ..product()
        };
        let new = Policy {
            stage: N,
            enroll_date: d(2024, 1, 31),
            ..policy()
        };
        // Free N: enrol 31 Jan + 2 months = 31 Mar; − 1 day = 30 Mar.
        assert_eq!(last_date_for_payment(&free, &new, None), d(2024, 3, 30));

        let renewal = Policy {
            stage: R,
            start_date: d(2025, 1, 1),
            ..policy()
        };
        // Free R: prev expiry 31 Dec + 1 = 1 Jan; + 2 months = 1 Mar; − 1 = 28 Feb 2025.
        assert_eq!(
            last_date_for_payment(&free, &renewal, Some(d(2024, 12, 31))),
            d(2025, 2, 28)
        );
        // Without the previous expiry: start − 1 = 31 Dec, the same answer.
        assert_eq!(last_date_for_payment(&free, &renewal, None), d(2025, 2, 28));

        let c = cycled();
        // Cycle N: start 1 Jan + 2 months enrolment grace − 1 = 29 Feb 2024.
        let cn = Policy {
            stage: N,
            start_date: d(2024, 1, 1),
            ..policy()
        };
        assert_eq!(last_date_for_payment(&c, &cn, None), d(2024, 2, 29));
        // Cycle R: start 1 Jan + 1 month renewal grace − 1 = 31 Jan.
        let cr = Policy { stage: R, ..cn };
        assert_eq!(last_date_for_payment(&c, &cr, None), d(2024, 1, 31));
    }
}
