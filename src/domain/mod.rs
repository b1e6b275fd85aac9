//! The openIMIS domain: entities and the rules that decide dates, amounts and status.
//!
//! Owns: every business rule that openIMIS's stored procedures and web app apply
//! (policy period, renewal start, policy value, activation, coverage letter, renewal prompts),
//! as plain functions over plain data, each with worked examples as tests.
//! Must never: do I/O, read a clock (dates are passed in), or depend on the store or a wire.

pub mod activation;
pub mod chfid;
pub mod coverage;
pub mod dates;
pub mod eat;
pub mod eligibility;
pub mod model;
pub mod money;
pub mod period;
pub mod phone;
pub mod pin;
pub mod privacy;
pub mod product;
pub mod renewal;
pub mod sms_caps;
pub mod value;

#[cfg(test)]
pub(crate) mod fixtures;

pub use activation::{apply_payment, cover_members, Activation, ActivationError};
pub use chfid::{Chfid, ChfidCheck, ChfidError, ChfidRule};
pub use coverage::{
    coverage_letter, member_cover, status_on, summarize, CoverageLetter, MemberPolicy,
    ProductCoverage,
};
pub use dates::{add_days, add_months, add_months_signed};
pub use eat::{eat, eat_date, eat_datetime, show_date, utc_from_eat};
pub use model::*;
pub use money::Money;
pub use period::{last_date_for_payment, policy_period, renewal_period, PeriodError, PolicyPeriod};
pub use phone::{Msisdn, PhoneError};
pub use product::{
    find_by_code, is_on_sale, is_sellable_in, renewal_product, require_sellable_in, ProductError,
};
pub use renewal::{
    effective_officer, needs_renewal_prompt, renewal_date, renewal_warnings,
    DEFAULT_RENEWAL_INTERVAL_DAYS, WARN_INVALID_OFFICER, WARN_NO_OFFICER, WARN_NO_PRODUCT,
};
pub use value::{policy_value, proxy_value, FamilyCounts, MemberForValue};
