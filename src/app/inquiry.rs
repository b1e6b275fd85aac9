//! The policy inquiry (`uspPolicyInquiry`) over the store: a family's cover per product, as
//! USSD shows it to members and officer SMS to officers.
//!
//! Owns: reading a family's policies and member rows and grouping the domain's per-member
//! coverage letters by product with the latest expiry. Must never: format text or choose how
//! names are shown (members see masked names, officers full ones): callers do.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::{summarize, CoverageLetter, Id, Insuree, InsureePolicy, MemberPolicy};
use crate::store::{Store, StoreError};

/// One product of a family's cover.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductCover {
    /// The product's code, or `#id` if the product is unknown here.
    pub code: String,
    /// The latest date any member is covered to under this product (their own coverage
    /// rows' dates, as openIMIS tells them); `None` if no member has a row under it.
    pub expiry: Option<NaiveDate>,
    /// Each member of the family, in member order, with their letter (`I` for a member
    /// without a row under the product's policies).
    pub members: Vec<(Insuree, CoverageLetter)>,
}

/// The cover of `family` on `today`, by product id; `None` if the family has no policy.
/// Like `uspPolicyInquiry`, every member meets every family policy (a missing member row
/// is a line too), and the rule for each line is `domain::coverage`.
pub fn family_cover(
    store: &Store,
    family: Id,
    today: NaiveDate,
) -> Result<Option<Vec<ProductCover>>, StoreError> {
    let policies = store.family_policies(family)?;
    if policies.is_empty() {
        return Ok(None);
    }
    let members = store.family_members(family)?;
    // (member, policy) → the member's row under that policy.
    let mut rows: BTreeMap<(Id, Id), InsureePolicy> = BTreeMap::new();
    for p in &policies {
        for row in store.insuree_policies_of_policy(p.id)? {
            rows.insert((row.insuree, p.id), row);
        }
    }
    type Line = (Option<NaiveDate>, Vec<(Insuree, CoverageLetter)>);
    let mut products: BTreeMap<Id, Line> = BTreeMap::new();
    for m in members {
        let mp: Vec<MemberPolicy<'_>> = policies
            .iter()
            .map(|p| MemberPolicy {
                product: p.product,
                policy: p.id,
                status: p.status,
                policy_expiry: p.expiry_date,
                row: rows.get(&(m.id, p.id)),
            })
            .collect();
        for line in summarize(&mp, today) {
            let e = products.entry(line.product).or_insert((None, Vec::new()));
            e.0 = e.0.max(line.expiry_date);
            e.1.push((m.clone(), line.letter));
        }
    }
    let mut out = Vec::with_capacity(products.len());
    for (product, (expiry, members)) in products {
        let code = store
            .product(product)?
            .map(|p| p.code)
            .unwrap_or_else(|| format!("#{product}"));
        out.push(ProductCover {
            code,
            expiry,
            members,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Policy, PolicyStatus};
    use crate::store::fixtures::*;
    use crate::store::WriteError;

    /// openIMIS demo family 1 as imported: the policy says 2019-08-20..=2020-08-19 and
    /// Active, the head's member row 2018-03-20..=2019-03-19; the child has no row.
    fn seed_disagreeing(store: &Store) {
        let w: Result<(), WriteError<std::convert::Infallible>> = store.write(|tx| {
            tx.put_product(&product(2, "CHF01"))?;
            tx.put_family(&family(10, 11))?;
            tx.put_insuree(&insuree(11, 10, 7_070_707, Some("0754100001")))?;
            tx.put_insuree(&insuree(12, 10, 7_070_708, None))?;
            tx.put_policy(&Policy {
                product: 2,
                status: PolicyStatus::Active,
                start_date: d(2019, 8, 20),
                effective_date: Some(d(2019, 8, 20)),
                expiry_date: d(2020, 8, 19),
                ..policy(20, 10)
            })?;
            tx.put_insuree_policy(&InsureePolicy {
                enrollment_date: d(2018, 3, 20),
                start_date: d(2018, 3, 20),
                effective_date: Some(d(2018, 3, 20)),
                expiry_date: d(2019, 3, 19),
                ..insuree_policy(21, 11, 20)
            })?;
            Ok(())
        });
        w.unwrap();
    }

    fn letters(cover: &ProductCover) -> Vec<(Id, char)> {
        cover
            .members
            .iter()
            .map(|(m, l)| (m.id, l.letter()))
            .collect()
    }

    #[test]
    fn family_cover_tells_each_member_their_own_row() {
        let store = Store::open_temporary().unwrap();
        seed_disagreeing(&store);
        let cases = [
            // Inside the head's row: A; the child, without a row, I.
            (d(2018, 6, 1), 'A'),
            // Inside the policy's dates but after the head's row: E.
            (d(2019, 10, 1), 'E'),
            // Both past, status still Active: E.
            (d(2026, 12, 7), 'E'),
        ];
        for (today, head) in cases {
            let cover = family_cover(&store, 10, today).unwrap().unwrap();
            assert_eq!(cover.len(), 1);
            assert_eq!(cover[0].code, "CHF01");
            // The member row's expiry, not the policy's 2020-08-19.
            assert_eq!(cover[0].expiry, Some(d(2019, 3, 19)), "on {today}");
            assert_eq!(letters(&cover[0]), [(11, head), (12, 'I')], "on {today}");
        }
    }

    #[test]
    fn family_without_policy_has_no_cover_and_rowless_product_no_date() {
        let store = Store::open_temporary().unwrap();
        seed_disagreeing(&store);
        assert_eq!(family_cover(&store, 99, d(2019, 1, 1)).unwrap(), None);
        let w: Result<(), WriteError<std::convert::Infallible>> = store.write(|tx| {
            tx.put_policy(&Policy {
                product: 3,
                ..policy(30, 10)
            })?;
            Ok(())
        });
        w.unwrap();
        let cover = family_cover(&store, 10, d(2024, 6, 1)).unwrap().unwrap();
        // Product 3 is unknown here and nobody has a row under its policy.
        assert_eq!(cover[1].code, "#3");
        assert_eq!(cover[1].expiry, None);
        assert_eq!(letters(&cover[1]), [(11, 'I'), (12, 'I')]);
    }
}
