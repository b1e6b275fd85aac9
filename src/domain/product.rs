//! Which product a family may buy or renew, where and when.
//!
//! Owns: the sale window (`DateFrom..=DateTo`), the `ConversionProdID` chain that replaces a
//! product once its sale has ended, and the location rule (national, or the family's district
//! or region). Errors are worded to be sent to a member or officer by SMS as they are.
//! Must never: load products itself (callers pass a lookup), or loop forever on a
//! misconfigured conversion chain.
//!
//! Where the sources disagree: `uspAPIRenewPolicy` converts when `today >= DateTo`, which
//! would refuse a product on the last day of its own sale window. The window is inclusive
//! everywhere else (the manual, `uspPolicyRenewalInserts`' `BETWEEN`), so we convert only
//! when `date > sale_to`.

use chrono::NaiveDate;

use super::model::{Discount, Id, Product};
use super::Money;

impl Product {
    /// A national product on sale from `sale_from` to `sale_to`, 12 months of cover, with
    /// every price, grace period and limit zero and no cycles: the base a real product
    /// (demo data, worked examples) overrides field by field.
    pub fn free(
        id: Id,
        uuid: uuid::Uuid,
        code: &str,
        name: &str,
        sale_from: NaiveDate,
        sale_to: NaiveDate,
    ) -> Product {
        Product {
            id,
            uuid,
            code: code.into(),
            name: name.into(),
            location: None,
            sale_from,
            sale_to,
            conversion: None,
            insurance_period_months: 12,
            administration_period_months: 0,
            cycles: Vec::new(),
            grace_period_enrolment_months: 0,
            grace_period_renewal_months: 0,
            grace_period_payment_months: 0,
            lump_sum: Money::ZERO,
            member_count: 0,
            threshold: 0,
            premium_adult: Money::ZERO,
            premium_child: Money::ZERO,
            registration_lump_sum: Money::ZERO,
            registration_fee: Money::ZERO,
            assembly_lump_sum: Money::ZERO,
            assembly_fee: Money::ZERO,
            enrolment_discount: Discount::default(),
            renewal_discount: Discount::default(),
            max_installments: 0,
            sp_code: None,
        }
    }
}

/// Conversion chains in practice are one or two hops (product relaunched yearly); anything
/// past this is a misconfiguration we refuse rather than walk.
const MAX_CONVERSIONS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("Product {0} is unknown")]
    Unknown(String),
    #[error("Product {code} is not on sale on {date} (sold from {from} to {to})")]
    NotOnSale {
        code: String,
        from: NaiveDate,
        to: NaiveDate,
        date: NaiveDate,
    },
    #[error("Product {code} is no longer sold and has no replacement")]
    NoConversion { code: String },
    #[error("Product {code} has a replacement loop; please contact the scheme")]
    ConversionLoop { code: String },
    #[error("Product {code} is not sold in this area")]
    NotSoldHere { code: String },
}

/// Whether `date` falls in the product's sale window, both ends included.
pub fn is_on_sale(product: &Product, date: NaiveDate) -> bool {
    product.sale_from <= date && date <= product.sale_to
}

/// The product a policy of `product` is renewed into on `date`: the product itself while on
/// sale, else the first product down its conversion chain that is on sale then.
pub fn renewal_product<'a, F>(
    lookup: F,
    product: &'a Product,
    date: NaiveDate,
) -> Result<&'a Product, ProductError>
where
    F: Fn(Id) -> Option<&'a Product>,
{
    let mut current = product;
    let mut seen: Vec<Id> = vec![current.id];
    loop {
        if date < current.sale_from {
            // A replacement that has not been launched yet is no answer either: converting
            // further would skip over it to a product meant for later still.
            return Err(not_on_sale(current, date));
        }
        if date <= current.sale_to {
            return Ok(current);
        }
        let next_id = current
            .conversion
            .ok_or_else(|| ProductError::NoConversion {
                code: current.code.clone(),
            })?;
        if seen.contains(&next_id) || seen.len() > MAX_CONVERSIONS {
            return Err(ProductError::ConversionLoop {
                code: current.code.clone(),
            });
        }
        // A dangling conversion id names no product the member could be told about, so the
        // message names the id, which is what an administrator needs to fix it.
        current = lookup(next_id).ok_or_else(|| ProductError::Unknown(format!("#{next_id}")))?;
        seen.push(next_id);
    }
}

/// Finds a product by the code a member or officer typed (case and spaces ignored).
pub fn find_by_code<'a, I>(products: I, code: &str) -> Result<&'a Product, ProductError>
where
    I: IntoIterator<Item = &'a Product>,
{
    let wanted = code.trim();
    products
        .into_iter()
        .find(|p| p.code.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| ProductError::Unknown(wanted.to_string()))
}

/// Whether a family living in `district` (of `region`) may hold the product: a national
/// product sells everywhere, a regional or district one only there.
pub fn is_sellable_in(product: &Product, district: Id, region: Id) -> bool {
    match product.location {
        None => true,
        Some(loc) => loc == district || loc == region,
    }
}

/// [`is_sellable_in`] as a `Result`, for request validation.
pub fn require_sellable_in(
    product: &Product,
    district: Id,
    region: Id,
) -> Result<(), ProductError> {
    if is_sellable_in(product, district, region) {
        Ok(())
    } else {
        Err(ProductError::NotSoldHere {
            code: product.code.clone(),
        })
    }
}

fn not_on_sale(product: &Product, date: NaiveDate) -> ProductError {
    ProductError::NotOnSale {
        code: product.code.clone(),
        from: product.sale_from,
        to: product.sale_to,
        date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{d, product};
    use std::collections::HashMap;

    /// CHF2023 (sold in 2023) → CHF2024 (2024) → CHF2025 (2025, no successor).
    fn chain() -> HashMap<Id, Product> {
        let year = |id: Id, y: i32, conversion: Option<Id>| Product {
            id,
            code: format!("CHF{y}"),
            sale_from: d(y, 1, 1),
            sale_to: d(y, 12, 31),
            conversion,
            ..product()
        };
        [
            year(1, 2023, Some(2)),
            year(2, 2024, Some(3)),
            year(3, 2025, None),
        ]
        .into_iter()
        .map(|p| (p.id, p))
        .collect()
    }

    #[test]
    fn sale_window_is_inclusive() {
        let p = Product {
            sale_from: d(2024, 1, 1),
            sale_to: d(2024, 12, 31),
            ..product()
        };
        let cases = [
            (d(2023, 12, 31), false),
            (d(2024, 1, 1), true), // first day
            (d(2024, 6, 15), true),
            (d(2024, 12, 31), true), // last day
            (d(2025, 1, 1), false),
        ];
        for (date, want) in cases {
            assert_eq!(is_on_sale(&p, date), want, "{date}");
        }
    }

    #[test]
    fn renewal_follows_the_conversion_chain() {
        let products = chain();
        let lookup = |id: Id| products.get(&id);
        let first = &products[&1];
        let cases = [
            // Still on sale (last day included): no conversion.
            (d(2023, 6, 1), "CHF2023"),
            (d(2023, 12, 31), "CHF2023"),
            // One day past the window: one hop.
            (d(2024, 1, 1), "CHF2024"),
            // Two hops: 2023 → 2024 → 2025.
            (d(2025, 7, 1), "CHF2025"),
        ];
        for (date, want) in cases {
            assert_eq!(
                renewal_product(lookup, first, date).map(|p| p.code.as_str()),
                Ok(want),
                "{date}"
            );
        }
    }

    #[test]
    fn renewal_refuses_what_cannot_be_sold() {
        let mut products = chain();
        let lookup = |id: Id| products.get(&id);
        // Past the end of the whole chain.
        assert_eq!(
            renewal_product(lookup, &products[&1], d(2026, 1, 1)),
            Err(ProductError::NoConversion {
                code: "CHF2025".into()
            })
        );
        // Before the product itself went on sale.
        assert_eq!(
            renewal_product(lookup, &products[&2], d(2023, 5, 1)),
            Err(ProductError::NotOnSale {
                code: "CHF2024".into(),
                from: d(2024, 1, 1),
                to: d(2024, 12, 31),
                date: d(2023, 5, 1),
            })
        );

        // A gap: the replacement launches in March, renewal asked in February.
        products.get_mut(&2).unwrap().sale_from = d(2024, 3, 1);
        let lookup = |id: Id| products.get(&id);
        assert!(matches!(
            renewal_product(lookup, &products[&1], d(2024, 2, 1)),
            Err(ProductError::NotOnSale { code, .. }) if code == "CHF2024"
        ));
    }

    #[test]
    fn conversion_loops_and_dangling_ids_are_errors_not_hangs() {
        let mut products = chain();
        // 2025 → 2023 closes the loop; every product has ended by 2026.
        products.get_mut(&3).unwrap().conversion = Some(1);
        let lookup = |id: Id| products.get(&id);
        assert_eq!(
            renewal_product(lookup, &products[&1], d(2026, 1, 1)),
            Err(ProductError::ConversionLoop {
                code: "CHF2025".into()
            })
        );
        // A product converting into itself.
        let selfish = Product {
            conversion: Some(1),
            sale_to: d(2020, 12, 31),
            ..product()
        };
        assert!(matches!(
            renewal_product(|_| Some(&selfish), &selfish, d(2021, 1, 1)),
            Err(ProductError::ConversionLoop { .. })
        ));

        products.get_mut(&3).unwrap().conversion = Some(99);
        let lookup = |id: Id| products.get(&id);
        assert_eq!(
            renewal_product(lookup, &products[&1], d(2026, 1, 1)),
            Err(ProductError::Unknown("#99".into()))
        );
    }

    #[test]
    fn find_by_code_ignores_case_and_spaces() {
        let products = chain();
        assert_eq!(
            find_by_code(products.values(), " chf2024 ").map(|p| p.id),
            Ok(2)
        );
        assert_eq!(
            find_by_code(products.values(), "NOPE"),
            Err(ProductError::Unknown("NOPE".into()))
        );
    }

    #[test]
    fn location_rule() {
        // Region 10 contains district 20; district 30 is elsewhere.
        let cases = [
            (None, 20, 10, true),     // national
            (Some(20), 20, 10, true), // the family's district
            (Some(10), 20, 10, true), // the family's region
            (Some(30), 20, 10, false),
            (Some(11), 20, 10, false), // another region
        ];
        for (location, district, region, want) in cases {
            let p = Product {
                location,
                ..product()
            };
            assert_eq!(is_sellable_in(&p, district, region), want, "{location:?}");
            assert_eq!(require_sellable_in(&p, district, region).is_ok(), want);
        }
        let err = require_sellable_in(
            &Product {
                location: Some(30),
                ..product()
            },
            20,
            10,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Product CHF1 is not sold in this area");
    }

    #[test]
    fn messages_read_well_in_an_sms() {
        let e = ProductError::NotOnSale {
            code: "CHF1".into(),
            from: d(2024, 1, 1),
            to: d(2024, 12, 31),
            date: d(2025, 1, 2),
        };
        assert_eq!(
            e.to_string(),
            "Product CHF1 is not on sale on 2025-01-02 (sold from 2024-01-01 to 2024-12-31)"
        );
    }
}
