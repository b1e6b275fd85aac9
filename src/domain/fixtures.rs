//! Test fixtures shared by the rule files: a plain product, policy and officer to vary with
//! struct-update syntax, so each test states only the fields its example depends on.
//!
//! Owns: test data only; compiled under `cfg(test)`.
//! Must never: be used by non-test code.

use chrono::NaiveDate;
use uuid::Uuid;

use super::model::{
    CycleStart, Id, InsureePolicy, Language, Officer, Policy, PolicyStage, PolicyStatus, Product,
};
use super::money::Money;

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn cycle(day: u32, month: u32) -> CycleStart {
    CycleStart { day, month }
}

/// A national, free-enrolment, 12-month product on sale 2020–2030 with every price zero.
pub fn product() -> Product {
    Product::free(
        1,
        Uuid::nil(),
        "CHF1",
        "iCHF",
        d(2020, 1, 1),
        d(2030, 12, 31),
    )
}

/// An Active new policy of family 1, product 1, covering calendar 2024, worth 30,000.
pub fn policy() -> Policy {
    Policy {
        id: 1,
        uuid: Uuid::nil(),
        family: 1,
        product: 1,
        officer: None,
        stage: PolicyStage::New,
        status: PolicyStatus::Active,
        value: Money::tzs(30_000),
        enroll_date: d(2023, 12, 15),
        start_date: d(2024, 1, 1),
        effective_date: Some(d(2024, 1, 1)),
        expiry_date: d(2024, 12, 31),
        self_renewed: false,
    }
}

pub fn insuree_policy(
    insuree: Id,
    effective: Option<NaiveDate>,
    expiry: NaiveDate,
) -> InsureePolicy {
    InsureePolicy {
        id: insuree,
        insuree,
        policy: 1,
        enrollment_date: d(2023, 12, 15),
        start_date: d(2024, 1, 1),
        effective_date: effective,
        expiry_date: expiry,
    }
}

/// An officer with no end date and no substitute.
pub fn officer(id: Id) -> Officer {
    Officer {
        id,
        uuid: Uuid::nil(),
        code: format!("E{id:05}"),
        last_name: "Mushi".into(),
        other_names: "Asha".into(),
        phone: None,
        district: None,
        villages: Vec::new(),
        substitute: None,
        works_to: None,
        phone_communication: true,
        language: Language::Sw,
        pin_hash: None,
    }
}
