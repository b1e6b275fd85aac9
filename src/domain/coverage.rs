//! Whether a member is covered today, as the one-letter status openIMIS shows.
//!
//! Owns: the `uspPolicyInquiry` / `uspAPIGetCoverage` letter for one member under one policy,
//! read from the member's own coverage row (not the policy's dates), and the choice of which
//! policy to show per product when a member has several.
//! Must never: read a clock (today is a parameter), or say "A" for a day outside the
//! member's effective..=expiry dates, whatever the policy status.

use chrono::NaiveDate;

use super::model::{Id, InsureePolicy, PolicyStatus};

/// openIMIS's coverage letters; the variant is the letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoverageLetter {
    /// Inactive: not paid yet, or not yet started.
    I,
    /// Active: covered today.
    A,
    /// Suspended: not paid within the payment grace period.
    S,
    /// Expired: today is past the expiry (or the policy was expired).
    E,
    /// Ready: paid, waiting for activation (`ActivationOption` 3).
    R,
}

impl CoverageLetter {
    pub fn letter(self) -> char {
        match self {
            CoverageLetter::I => 'I',
            CoverageLetter::A => 'A',
            CoverageLetter::S => 'S',
            CoverageLetter::E => 'E',
            CoverageLetter::R => 'R',
        }
    }
}

/// The status letter of `row` (one member under one policy) on `today`.
pub fn coverage_letter(
    row: &InsureePolicy,
    policy_status: PolicyStatus,
    today: NaiveDate,
) -> CoverageLetter {
    let Some(effective) = row.effective_date else {
        return CoverageLetter::I;
    };
    if today < effective {
        return CoverageLetter::I;
    }
    // The expiry date is the last covered day.
    if today > row.expiry_date {
        return CoverageLetter::E;
    }
    match policy_status {
        PolicyStatus::Idle => CoverageLetter::I,
        PolicyStatus::Active => CoverageLetter::A,
        PolicyStatus::Suspended => CoverageLetter::S,
        PolicyStatus::Ready => CoverageLetter::R,
        PolicyStatus::Expired => CoverageLetter::E,
    }
}

/// One coverage row of a member, with what the letter needs from its policy.
#[derive(Debug, Clone, Copy)]
pub struct MemberPolicy<'a> {
    pub product: Id,
    pub status: PolicyStatus,
    pub row: &'a InsureePolicy,
}

/// What to tell a member about one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductCoverage {
    pub product: Id,
    pub policy: Id,
    pub letter: CoverageLetter,
    pub effective_date: Option<NaiveDate>,
    pub expiry_date: NaiveDate,
}

/// One line per product, ordered by product id: the policy that covers the member today if
/// there is one, otherwise the one with the latest expiry. Picking by latest expiry alone
/// would answer "I" to a member who is covered today but has already taken an unpaid
/// renewal for next year, which is exactly the member who should hear "A".
pub fn summarize(rows: &[MemberPolicy<'_>], today: NaiveDate) -> Vec<ProductCoverage> {
    let mut best: Vec<ProductCoverage> = Vec::new();
    for r in rows {
        let line = ProductCoverage {
            product: r.product,
            policy: r.row.policy,
            letter: coverage_letter(r.row, r.status, today),
            effective_date: r.row.effective_date,
            expiry_date: r.row.expiry_date,
        };
        match best.iter_mut().find(|b| b.product == line.product) {
            Some(b) if rank(&line) > rank(b) => *b = line,
            Some(_) => {}
            None => best.push(line),
        }
    }
    best.sort_by_key(|b| b.product);
    best
}

/// Covering today first, then the latest expiry, then the newest policy for a stable answer.
fn rank(c: &ProductCoverage) -> (bool, NaiveDate, Id) {
    (c.letter == CoverageLetter::A, c.expiry_date, c.policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{d, insuree_policy};
    use CoverageLetter::*;
    use PolicyStatus::{Active, Expired, Idle, Ready, Suspended};

    #[test]
    fn letter_for_each_branch() {
        // Member covered 1 Jan..=31 Dec 2024.
        let covered = insuree_policy(1, Some(d(2024, 1, 1)), d(2024, 12, 31));
        let unpaid = insuree_policy(2, None, d(2024, 12, 31));
        let cases = [
            // No effective date: inactive whatever the policy says.
            (&unpaid, Active, d(2024, 6, 1), I),
            // Effective date in the future: not covered yet.
            (&covered, Active, d(2023, 12, 31), I),
            // First day, mid-year, and the expiry day itself: covered.
            (&covered, Active, d(2024, 1, 1), A),
            (&covered, Active, d(2024, 6, 1), A),
            (&covered, Active, d(2024, 12, 31), A),
            // The day after expiry: expired, even if the nightly job has not run yet.
            (&covered, Active, d(2025, 1, 1), E),
            // Inside the dates, the policy status decides.
            (&covered, Idle, d(2024, 6, 1), I),
            (&covered, Suspended, d(2024, 6, 1), S),
            (&covered, Ready, d(2024, 6, 1), R),
            (&covered, Expired, d(2024, 6, 1), E),
        ];
        for (row, status, today, want) in cases {
            assert_eq!(
                coverage_letter(row, status, today),
                want,
                "{status:?} on {today}"
            );
        }
        let letters: String = [I, A, S, E, R].iter().map(|l| l.letter()).collect();
        assert_eq!(letters, "IASER");
    }

    #[test]
    fn summary_prefers_current_cover_then_latest_expiry() {
        let today = d(2024, 12, 20);
        let current = InsureePolicy {
            policy: 10,
            ..insuree_policy(1, Some(d(2024, 1, 1)), d(2024, 12, 31))
        };
        let renewal = InsureePolicy {
            policy: 11,
            ..insuree_policy(1, None, d(2025, 12, 31))
        };
        let old = InsureePolicy {
            policy: 5,
            ..insuree_policy(1, Some(d(2022, 1, 1)), d(2022, 12, 31))
        };
        let lapsed = InsureePolicy {
            policy: 7,
            ..insuree_policy(1, Some(d(2023, 1, 1)), d(2023, 12, 31))
        };
        let rows = [
            // Product 2: covered now (exp 2024) and an unpaid renewal (exp 2025) → the cover.
            MemberPolicy {
                product: 2,
                status: Active,
                row: &current,
            },
            MemberPolicy {
                product: 2,
                status: Idle,
                row: &renewal,
            },
            // Product 1: two expired policies → the later one, 2023.
            MemberPolicy {
                product: 1,
                status: Expired,
                row: &old,
            },
            MemberPolicy {
                product: 1,
                status: Expired,
                row: &lapsed,
            },
        ];
        let summary = summarize(&rows, today);
        let got: Vec<(Id, Id, char)> = summary
            .iter()
            .map(|c| (c.product, c.policy, c.letter.letter()))
            .collect();
        assert_eq!(got, [(1, 7, 'E'), (2, 10, 'A')]);

        // After the current cover ends the renewal (latest expiry) is the answer: 'I', unpaid.
        let after = summarize(&rows, d(2025, 1, 1));
        assert_eq!((after[1].policy, after[1].letter), (11, I));
        assert!(summarize(&[], today).is_empty());
    }
}
