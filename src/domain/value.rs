//! What a family must pay for a policy: `uspPolicyValue` and `uspPolicyValueProxyFamily`.
//!
//! Owns: counting a family into adults, children and "others", the lump sum and the extra
//! members over the threshold, the general assembly and registration fees, and the early
//! enrolment and renewal discounts.
//! Must never: read a clock (age is taken on the enrol date), use floating point, or look up
//! the family or the previous policy itself.
//!
//! Where the sources disagree (reference §2.4), we choose:
//! - Age: exact age on the enrol date, as Django does; a member turning 18 on the enrol date
//!   is an adult. The SQL `DATEDIFF(YEAR, DOB, now)` counts year boundaries crossed by today,
//!   which makes a child born in December an "adult" from 1 January of the year they turn 18.
//! - Contribution: the SP's formula. With a lump sum the extras over the threshold are added
//!   to it; without one every member is priced and the extras are added again (Django charges
//!   them only once). A threshold of 0 means "no threshold" (Django's `if product.threshold`);
//!   read literally it would bill every member twice.
//! - Member count: the first `member_count` members in enrolment order are counted; the rest
//!   are not billed (and, elsewhere, not covered).

use chrono::{Datelike, NaiveDate};

use super::dates::{add_days, add_months_signed};
use super::model::{PolicyStage, Product, Relationship};
use super::money::Money;

/// Age from which a member is priced as an adult (`CoreConfig.age_of_majority`).
pub const AGE_OF_MAJORITY: u32 = 18;

/// What the value rule needs to know about one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberForValue {
    pub dob: NaiveDate,
    /// Relationship to the head; `None` for the head.
    pub relationship: Option<Relationship>,
}

/// A family as the price list sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FamilyCounts {
    pub adults: u32,
    pub children: u32,
    /// Members related as "Others" (7): never inside the lump sum.
    pub other_adults: u32,
    pub other_children: u32,
}

impl FamilyCounts {
    pub fn total(&self) -> u32 {
        self.adults + self.children + self.other_adults + self.other_children
    }
}

/// `uspPolicyValue`: the contribution due for a policy. `members` are the family's current
/// members in enrolment order; `previous_expiry` is the expiry of the policy being renewed.
pub fn policy_value(
    product: &Product,
    members: &[MemberForValue],
    stage: PolicyStage,
    enroll_date: NaiveDate,
    start_date: NaiveDate,
    previous_expiry: Option<NaiveDate>,
) -> Money {
    let counted = if product.member_count > 0 {
        let limit = usize::try_from(product.member_count).unwrap_or(usize::MAX);
        &members[..members.len().min(limit)]
    } else {
        members
    };
    let counts = count_family(counted, enroll_date);
    let value = value_of(product, counts, stage);
    match discount_percent(product, stage, enroll_date, start_date, previous_expiry) {
        Some(perc) => value.less_percent(perc),
        None => value,
    }
}

/// `uspPolicyValueProxyFamily`: the price for a family that is not registered yet, from
/// head counts. There are no dates, so no discount; and no enrolment order, so no member cap.
pub fn proxy_value(
    product: &Product,
    adults: u32,
    children: u32,
    other_adults: u32,
    other_children: u32,
    stage: PolicyStage,
) -> Money {
    let counts = FamilyCounts {
        adults,
        children,
        other_adults,
        other_children,
    };
    value_of(product, counts, stage)
}

/// Classifies members by exact age on `on` and by relationship.
pub fn count_family(members: &[MemberForValue], on: NaiveDate) -> FamilyCounts {
    let mut c = FamilyCounts::default();
    for m in members {
        let adult = age_on(m.dob, on) >= i64::from(AGE_OF_MAJORITY);
        match (m.relationship == Some(Relationship::Others), adult) {
            (false, true) => c.adults += 1,
            (false, false) => c.children += 1,
            (true, true) => c.other_adults += 1,
            (true, false) => c.other_children += 1,
        }
    }
    c
}

/// Completed years between `dob` and `on` (negative for a date of birth in the future).
pub fn age_on(dob: NaiveDate, on: NaiveDate) -> i64 {
    let years = i64::from(on.year()) - i64::from(dob.year());
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        years - 1
    } else {
        years
    }
}

/// The value before discounts (steps 4–8 of the SP).
fn value_of(product: &Product, c: FamilyCounts, stage: PolicyStage) -> Money {
    let (extra_adults, extra_children) = extras(product.threshold, c.adults, c.children);
    let base = if product.lump_sum.is_positive() {
        product.lump_sum
    } else {
        product.premium_adult * c.adults + product.premium_child * c.children
    };
    let contribution = base
        + product.premium_adult * (extra_adults + c.other_adults)
        + product.premium_child * (extra_children + c.other_children);

    let assembly = if product.assembly_lump_sum.is_positive() {
        product.assembly_lump_sum
    } else {
        product.assembly_fee * c.total()
    };
    let registration = match stage {
        PolicyStage::Renewal => Money::ZERO,
        PolicyStage::New if product.registration_lump_sum.is_positive() => {
            product.registration_lump_sum
        }
        PolicyStage::New => product.registration_fee * c.total(),
    };
    contribution + assembly + registration
}

/// Members over the threshold: adults first take the places, children fill the rest.
fn extras(threshold: u32, adults: u32, children: u32) -> (u32, u32) {
    if threshold == 0 {
        return (0, 0);
    }
    let extra_adults = adults.saturating_sub(threshold);
    // Places left for children = threshold − adults inside the threshold.
    let places_left = threshold - (adults - extra_adults);
    (extra_adults, children.saturating_sub(places_left))
}

/// The discount percentage earned by enrolling (or renewing) early enough, if any.
fn discount_percent(
    product: &Product,
    stage: PolicyStage,
    enroll_date: NaiveDate,
    start_date: NaiveDate,
    previous_expiry: Option<NaiveDate>,
) -> Option<u8> {
    let (discount, reference) = match stage {
        // Only cycle products: for a free product the start follows the enrol date, so
        // "early" cannot be earned.
        PolicyStage::New if product.cycles.is_empty() => return None,
        PolicyStage::New => (product.enrolment_discount, start_date),
        // The renewal reference is the day the renewal would start on time.
        PolicyStage::Renewal => (product.renewal_discount, add_days(previous_expiry?, 1)),
    };
    let deadline = add_months_signed(reference, -i64::from(discount.period_months));
    (discount.perc > 0 && enroll_date <= deadline).then_some(discount.perc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{cycle, d, product};
    use crate::domain::model::Discount;
    use PolicyStage::{New as N, Renewal as R};
    use Relationship::{Child, Others, Spouse};

    const ENROL: NaiveDate = match NaiveDate::from_ymd_opt(2024, 6, 1) {
        Some(date) => date,
        None => panic!("valid date"),
    };

    fn adult() -> MemberForValue {
        MemberForValue {
            dob: d(1990, 3, 10),
            relationship: Some(Spouse),
        }
    }
    fn child() -> MemberForValue {
        MemberForValue {
            dob: d(2015, 3, 10),
            relationship: Some(Child),
        }
    }
    fn head() -> MemberForValue {
        MemberForValue {
            relationship: None,
            ..adult()
        }
    }
    fn other(dob: NaiveDate) -> MemberForValue {
        MemberForValue {
            dob,
            relationship: Some(Others),
        }
    }

    /// The Tanzania iCHF shape: 30,000 covers up to 6 members, extras 10,000 / 5,000.
    fn ichf() -> Product {
        Product {
            lump_sum: Money::tzs(30_000),
            member_count: 10,
            threshold: 6,
            premium_adult: Money::tzs(10_000),
            premium_child: Money::tzs(5_000),
            ..product()
        }
    }

    fn value(p: &Product, members: &[MemberForValue], stage: PolicyStage) -> Money {
        policy_value(p, members, stage, ENROL, ENROL, None)
    }

    #[test]
    fn lump_sum_and_threshold() {
        let p = ichf();
        let family = |a: usize, c: usize| -> Vec<MemberForValue> {
            let mut m = vec![head()];
            m.extend(std::iter::repeat_n(adult(), a.saturating_sub(1)));
            m.extend(std::iter::repeat_n(child(), c));
            m
        };
        let cases = [
            // 2 adults + 2 children = 4 ≤ 6: the lump sum alone.
            (family(2, 2), 30_000),
            // 2 adults + 6 children: places for children = 6 − 2 = 4 → 2 extra children:
            // 30,000 + 2 × 5,000 = 40,000.
            (family(2, 6), 40_000),
            // 8 adults + 1 child: 8 − 6 = 2 extra adults, 0 places left → 1 extra child:
            // 30,000 + 2 × 10,000 + 1 × 5,000 = 55,000.
            (family(8, 1), 55_000),
            // 12 members, member count 10: the last 2 children are dropped; 2 adults +
            // 8 children → 4 extra children: 30,000 + 4 × 5,000 = 50,000.
            (family(2, 10), 50_000),
        ];
        for (members, want) in cases {
            assert_eq!(
                value(&p, &members, R),
                Money::tzs(want),
                "{} members",
                members.len()
            );
        }
    }

    #[test]
    fn others_are_always_priced_outside_the_lump_sum() {
        let p = ichf();
        // Head + spouse + 1 child inside the lump sum; an adult "other" and a child "other":
        // 30,000 + 1 × 10,000 + 1 × 5,000 = 45,000, though 5 members < threshold 6.
        let members = [
            head(),
            adult(),
            child(),
            other(d(1950, 1, 1)),
            other(d(2020, 1, 1)),
        ];
        assert_eq!(value(&p, &members, R), Money::tzs(45_000));
    }

    #[test]
    fn per_member_pricing_without_lump_sum() {
        let p = Product {
            premium_adult: Money::tzs(10_000),
            premium_child: Money::tzs(5_000),
            ..product() // lump sum 0, threshold 0
        };
        // 2 × 10,000 + 3 × 5,000 = 35,000.
        let members = [head(), adult(), child(), child(), child()];
        assert_eq!(value(&p, &members, R), Money::tzs(35_000));
        // With a threshold of 4 the SP bills the one extra child again: 35,000 + 5,000.
        let with_threshold = Product { threshold: 4, ..p };
        assert_eq!(value(&with_threshold, &members, R), Money::tzs(40_000));
    }

    #[test]
    fn registration_on_new_only_and_assembly_per_member() {
        let p = Product {
            registration_fee: Money::tzs(1_000),
            assembly_fee: Money::tzs(500),
            ..ichf()
        };
        let members = [head(), adult(), child(), child()];
        // N: 30,000 + 4 × 500 assembly + 4 × 1,000 registration = 36,000.
        assert_eq!(value(&p, &members, N), Money::tzs(36_000));
        // R: no registration: 30,000 + 4 × 500 = 32,000.
        assert_eq!(value(&p, &members, R), Money::tzs(32_000));
        // Lump sums replace the per-member fees: 30,000 + 2,000 + 3,000 = 35,000.
        let lumps = Product {
            registration_lump_sum: Money::tzs(3_000),
            assembly_lump_sum: Money::tzs(2_000),
            ..p
        };
        assert_eq!(value(&lumps, &members, N), Money::tzs(35_000));
    }

    #[test]
    fn enrolment_discount_needs_a_cycle_and_an_early_enrolment() {
        let p = Product {
            cycles: vec![cycle(1, 7)],
            enrolment_discount: Discount {
                perc: 10,
                period_months: 2,
            },
            ..ichf()
        };
        let start = d(2024, 7, 1); // deadline = 1 Jul − 2 months = 1 May
        let members = [head()];
        let at = |enrol| policy_value(&p, &members, N, enrol, start, None);
        // 1 May ≤ 1 May: 30,000 − 10% = 27,000.
        assert_eq!(at(d(2024, 5, 1)), Money::tzs(27_000));
        // 2 May is too late: full price.
        assert_eq!(at(d(2024, 5, 2)), Money::tzs(30_000));
        // The same early date on a free-enrolment product: no discount.
        let free = Product {
            cycles: vec![],
            ..p.clone()
        };
        assert_eq!(
            policy_value(&free, &members, N, d(2024, 1, 1), start, None),
            Money::tzs(30_000)
        );
    }

    #[test]
    fn renewal_discount_is_measured_from_the_day_after_expiry() {
        let p = Product {
            renewal_discount: Discount {
                perc: 5,
                period_months: 1,
            },
            assembly_fee: Money::tzs(1_000),
            ..ichf()
        };
        let members = [head(), child()];
        // prev expiry 31 Dec + 1 = 1 Jan; − 1 month = 1 Dec: deadline.
        let prev = Some(d(2024, 12, 31));
        let at = |enrol| policy_value(&p, &members, R, enrol, d(2025, 1, 1), prev);
        // (30,000 + 2 × 1,000) − 5% = 32,000 − 1,600 = 30,400: the discount is on the total.
        assert_eq!(at(d(2024, 12, 1)), Money::tzs(30_400));
        assert_eq!(at(d(2024, 12, 2)), Money::tzs(32_000));
        // No previous policy known: no renewal discount.
        assert_eq!(
            policy_value(&p, &members, R, d(2024, 1, 1), d(2025, 1, 1), None),
            Money::tzs(32_000)
        );
        // A new policy never earns the renewal discount.
        let n = policy_value(&p, &members, N, d(2024, 1, 1), d(2025, 1, 1), prev);
        assert_eq!(n, Money::tzs(32_000));
    }

    #[test]
    fn age_is_exact_on_the_enrol_date() {
        // Born 1 Jun 2006: 18 exactly on 1 Jun 2024 → adult; the day before → child.
        let teen = MemberForValue {
            dob: d(2006, 6, 1),
            relationship: Some(Child),
        };
        assert_eq!(count_family(&[teen], d(2024, 6, 1)).adults, 1);
        assert_eq!(count_family(&[teen], d(2024, 5, 31)).children, 1);
        // Born 29 Feb 2004: not yet 18 on 28 Feb 2022, 18 on 1 Mar 2022.
        assert_eq!(age_on(d(2004, 2, 29), d(2022, 2, 28)), 17);
        assert_eq!(age_on(d(2004, 2, 29), d(2022, 3, 1)), 18);
        // A (wrong) future birth date is a child, not a panic.
        assert_eq!(age_on(d(2030, 1, 1), d(2024, 1, 1)), -6);

        // Priced: per-member product, the teen is 10,000 on her birthday, 5,000 the day before.
        let p = Product {
            premium_adult: Money::tzs(10_000),
            premium_child: Money::tzs(5_000),
            ..product()
        };
        let on = |enrol| policy_value(&p, &[teen], R, enrol, enrol, None);
        assert_eq!(on(d(2024, 6, 1)), Money::tzs(10_000));
        assert_eq!(on(d(2024, 5, 31)), Money::tzs(5_000));
    }

    #[test]
    fn proxy_family_and_empty_family() {
        let p = Product {
            registration_fee: Money::tzs(1_000),
            ..ichf()
        };
        // 3 adults + 5 children: 8 − 6 → 2 extra children (places 6 − 3 = 3):
        // 30,000 + 2 × 5,000 + 1 other adult 10,000 + 8+1 members × 1,000 registration = 59,000.
        assert_eq!(proxy_value(&p, 3, 5, 1, 0, N), Money::tzs(59_000));
        // R drops the registration: 59,000 − 9,000 = 50,000.
        assert_eq!(proxy_value(&p, 3, 5, 1, 0, R), Money::tzs(50_000));
        // No members still owes the lump sum (and nothing per member).
        assert_eq!(value(&p, &[], N), Money::tzs(30_000));
    }
}
