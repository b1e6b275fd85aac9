//! Whether a member is covered today, as openIMIS's own enquiry tells them.
//!
//! Owns: the rule `uspPolicyInquiry` / `uspAPIGetCoverage` apply (MSSQL
//! `database_ms_sqlserver`, migration 17.5.16 → 18.0.0 and later, Ready added 2021):
//!
//! ```sql
//! CONVERT(VARCHAR(12), IP.ExpiryDate, 103) ExpiryDate,
//! CASE WHEN IP.EffectiveDate IS NULL OR today < IP.EffectiveDate THEN 'I'
//!      WHEN today NOT BETWEEN IP.EffectiveDate AND IP.ExpiryDate THEN 'E'
//!      ELSE CASE PL.PolicyStatus WHEN 1 THEN 'I' WHEN 2 THEN 'A' WHEN 4 THEN 'S'
//!                                WHEN 16 THEN 'R' ELSE 'E' END END
//! FROM tblInsuree I ... LEFT OUTER JOIN tblPolicy PL ON I.FamilyID = PL.FamilyID
//!      LEFT OUTER JOIN tblInsureePolicy IP ON IP.InsureeId = I.InsureeId AND IP.PolicyId = PL.PolicyID
//! ```
//!
//! So the dates a member is told are their own `tblInsureePolicy` row's, not the policy's;
//! the policy contributes only its status; a member of the family with no row under a policy
//! is shown `I` with no date. One addition: the status is read as openIMIS's nightly
//! `uspPolicyStatusUpdate` (`SET PolicyStatus = 8 WHERE ExpiryDate < today`) would leave it,
//! so a policy past its own expiry whose status is still Active (the batch never ran, as in
//! imported databases) reads as expired, not as "A" on a member row that outlasts it.
//! Also owns the choice of which policy to show per product when a member has several.
//! Must never: read a clock (today is a parameter), or say "A" for a day outside the
//! member's effective..=expiry dates or after the policy's expiry, whatever the status.

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

/// The status letter of `row` (one member under one policy) on `today`: the
/// `uspPolicyInquiry` CASE, with `policy_status` as stored.
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

/// The policy status on `today` as openIMIS's nightly `uspPolicyStatusUpdate` leaves it:
/// Expired once the policy's own expiry date has passed, whatever was stored.
pub fn status_on(stored: PolicyStatus, policy_expiry: NaiveDate, today: NaiveDate) -> PolicyStatus {
    if policy_expiry < today {
        PolicyStatus::Expired
    } else {
        stored
    }
}

/// One of a family's policies, as one member's enquiry sees it: what the letter needs
/// from `tblPolicy`, and the member's own `tblInsureePolicy` row under it, if any.
#[derive(Debug, Clone, Copy)]
pub struct MemberPolicy<'a> {
    pub product: Id,
    pub policy: Id,
    pub status: PolicyStatus,
    /// `tblPolicy.ExpiryDate`: only decides whether the status is stale.
    pub policy_expiry: NaiveDate,
    pub row: Option<&'a InsureePolicy>,
}

/// What to tell a member about one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductCoverage {
    pub product: Id,
    pub policy: Id,
    pub letter: CoverageLetter,
    /// The member row's dates; `None` when the member has no row under the policy.
    pub effective_date: Option<NaiveDate>,
    pub expiry_date: Option<NaiveDate>,
}

/// The line openIMIS's enquiry shows for one member under one policy on `today`.
pub fn member_cover(p: &MemberPolicy<'_>, today: NaiveDate) -> ProductCoverage {
    let (letter, effective_date, expiry_date) = match p.row {
        // The LEFT OUTER JOIN found no row: NULL dates, so 'I'.
        None => (CoverageLetter::I, None, None),
        Some(row) => (
            coverage_letter(row, status_on(p.status, p.policy_expiry, today), today),
            row.effective_date,
            Some(row.expiry_date),
        ),
    };
    ProductCoverage {
        product: p.product,
        policy: p.policy,
        letter,
        effective_date,
        expiry_date,
    }
}

/// One line per product, ordered by product id: the policy that covers the member today if
/// there is one, otherwise the one with the latest expiry. Picking by latest expiry alone
/// would answer "I" to a member who is covered today but has already taken an unpaid
/// renewal for next year, which is exactly the member who should hear "A".
pub fn summarize(rows: &[MemberPolicy<'_>], today: NaiveDate) -> Vec<ProductCoverage> {
    let mut best: Vec<ProductCoverage> = Vec::new();
    for r in rows {
        let line = member_cover(r, today);
        match best.iter_mut().find(|b| b.product == line.product) {
            Some(b) if rank(&line) > rank(b) => *b = line,
            Some(_) => {}
            None => best.push(line),
        }
    }
    best.sort_by_key(|b| b.product);
    best
}

/// Covering today first, then the latest expiry (a row with dates before none), then the
/// newest policy for a stable answer.
fn rank(c: &ProductCoverage) -> (bool, Option<NaiveDate>, Id) {
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

    /// A policy whose own expiry is the member row's (the rows agree).
    fn mp(product: Id, status: PolicyStatus, row: &InsureePolicy) -> MemberPolicy<'_> {
        active_until(row, row.expiry_date).with(product, status)
    }

    /// An Active policy of product 1 that ends on `policy_expiry`, with `row` under it.
    fn active_until(row: &InsureePolicy, policy_expiry: NaiveDate) -> MemberPolicy<'_> {
        MemberPolicy {
            product: 1,
            policy: row.policy,
            status: Active,
            policy_expiry,
            row: Some(row),
        }
    }

    impl MemberPolicy<'_> {
        fn with(self, product: Id, status: PolicyStatus) -> Self {
            MemberPolicy {
                product,
                status,
                ..self
            }
        }
    }

    #[test]
    fn status_reads_as_the_expiry_batch_leaves_it() {
        let expiry = d(2024, 12, 31);
        // Up to and including the policy's expiry day the stored status stands.
        assert_eq!(status_on(Active, expiry, d(2024, 12, 31)), Active);
        assert_eq!(status_on(Suspended, expiry, d(2024, 6, 1)), Suspended);
        // The day after, uspPolicyStatusUpdate would have set 8 (Expired), whatever it was.
        assert_eq!(status_on(Active, expiry, d(2025, 1, 1)), Expired);
        assert_eq!(status_on(Ready, expiry, d(2025, 1, 1)), Expired);
    }

    /// openIMIS's demo database (database_postgresql `demo_db.sql`): policy 1 of family 1
    /// says 2019-08-20..=2020-08-19, PolicyStatus 2 (Active), while tblInsureePolicy 1
    /// (insuree 1 under it) says 2018-03-20..=2019-03-19. uspPolicyInquiry reads the
    /// member's row, so the member is told 19/03/2019 and never "A" after it.
    #[test]
    fn demo_rows_that_disagree_follow_the_member_row() {
        let row = InsureePolicy {
            policy: 1,
            enrollment_date: d(2018, 3, 20),
            start_date: d(2018, 3, 20),
            ..insuree_policy(1, Some(d(2018, 3, 20)), d(2019, 3, 19))
        };
        let p = active_until(&row, d(2020, 8, 19));
        let cases = [
            // Inside the member row (before the policy's own dates): A, as openIMIS says.
            (d(2018, 6, 1), A),
            (d(2019, 3, 19), A),
            // Inside the policy's dates but past the member row: expired for this member.
            (d(2019, 10, 1), E),
            // Both passed, status still Active (the expiry batch never ran): expired.
            (d(2026, 12, 7), E),
        ];
        for (today, want) in cases {
            let line = member_cover(&p, today);
            assert_eq!(line.letter, want, "on {today}");
            // The date told is always the member's, never the policy's 19/08/2020.
            assert_eq!(line.expiry_date, Some(d(2019, 3, 19)), "on {today}");
            assert_eq!(line.effective_date, Some(d(2018, 3, 20)));
        }
    }

    #[test]
    fn member_row_that_outlasts_an_expired_active_policy_is_expired() {
        // The member row runs to mid-2025, the policy ended 2024 but is still Active.
        let row = insuree_policy(1, Some(d(2024, 1, 1)), d(2025, 6, 30));
        let p = active_until(&row, d(2024, 12, 31));
        assert_eq!(member_cover(&p, d(2024, 12, 31)).letter, A);
        // The raw CASE on the stale status would say A; the batch would have said 8 → E.
        assert_eq!(coverage_letter(&row, Active, d(2025, 2, 1)), A);
        let line = member_cover(&p, d(2025, 2, 1));
        assert_eq!(line.letter, E);
        assert_eq!(line.expiry_date, Some(d(2025, 6, 30)));
    }

    #[test]
    fn member_without_a_row_is_inactive_with_no_date() {
        let today = d(2024, 6, 1);
        let no_row = MemberPolicy {
            product: 1,
            policy: 9,
            status: Active,
            policy_expiry: d(2024, 12, 31),
            row: None,
        };
        let line = member_cover(&no_row, today);
        assert_eq!(
            (line.letter, line.effective_date, line.expiry_date),
            (I, None, None)
        );
        // A row with dates under an older policy of the same product is shown instead,
        // even an expired one: it is what the member was last covered by.
        let old = InsureePolicy {
            policy: 3,
            ..insuree_policy(1, Some(d(2022, 1, 1)), d(2022, 12, 31))
        };
        let got = summarize(&[no_row, mp(1, Expired, &old)], today);
        assert_eq!(
            got.iter().map(|c| (c.policy, c.letter)).collect::<Vec<_>>(),
            [(3, E)]
        );
        // Alone, the row-less policy is still a line: 'I'.
        assert_eq!(summarize(&[no_row], today)[0].letter, I);
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
            mp(2, Active, &current),
            mp(2, Idle, &renewal),
            // Product 1: two expired policies → the later one, 2023.
            mp(1, Expired, &old),
            mp(1, Expired, &lapsed),
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
