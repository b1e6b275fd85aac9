//! The policy inquiry (`uspPolicyInquiry`) over the store: a family's cover per product, as
//! USSD shows it to members and officer SMS to officers.
//!
//! Owns: reading a family's policies and member rows and grouping the domain's per-member
//! coverage letters by product with the latest expiry. Must never: format text or choose how
//! names are shown (members see masked names, officers full ones): callers do.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::{
    summarize, CoverageLetter, Id, Insuree, InsureePolicy, MemberPolicy, PolicyStatus,
};
use crate::store::{Store, StoreError};

/// One product of a family's cover.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductCover {
    /// The product's code, or `#id` if the product is unknown here.
    pub code: String,
    /// The latest date any member is covered to under this product.
    pub expiry: NaiveDate,
    /// Each member with a row under the product, in member order, with their letter.
    pub members: Vec<(Insuree, CoverageLetter)>,
}

/// The cover of `family` on `today`, by product id; `None` if the family has no policy.
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
    let mut rows: BTreeMap<Id, Vec<(Id, PolicyStatus, InsureePolicy)>> = BTreeMap::new();
    for p in &policies {
        for row in store.insuree_policies_of_policy(p.id)? {
            rows.entry(row.insuree)
                .or_default()
                .push((p.product, p.status, row));
        }
    }
    let mut products: BTreeMap<Id, (NaiveDate, Vec<(Insuree, CoverageLetter)>)> = BTreeMap::new();
    for m in members {
        let mine = rows.get(&m.id).map(Vec::as_slice).unwrap_or(&[]);
        let mp: Vec<MemberPolicy<'_>> = mine
            .iter()
            .map(|(product, status, row)| MemberPolicy {
                product: *product,
                status: *status,
                row,
            })
            .collect();
        for line in summarize(&mp, today) {
            let e = products
                .entry(line.product)
                .or_insert((line.expiry_date, Vec::new()));
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
