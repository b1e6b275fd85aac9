//! Renewing a family's policy, one implementation for every channel: which products the
//! family can renew (its own, or the conversion product of one off sale), what the renewal
//! costs and when it runs, whether one is already waiting for payment, and the records a
//! renewal writes: an Idle 'R' policy, every member's coverage row and a payment intent.
//!
//! Owns: [`FamilyFile`] (what a renewal reads of a family), [`Quote`] and [`Renewal`].
//! Must never: choose the channel's words or replies, journal a channel's step, or decide
//! how a control number is obtained (passed in as [`AssignControlNumber`]).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::payments::{self, AssignControlNumber, Payer, PolicyLine};
use crate::domain::{
    policy_value, renewal_period, renewal_product, Family, Id, Insuree, InsureePolicy,
    MemberForValue, Money, Payment, Policy, PolicyStage, PolicyStatus, Product,
};
use crate::store::{Store, StoreError, TxError, WriteTx};

/// What a renewal reads of a family, once.
#[derive(Debug, Clone)]
pub struct FamilyFile {
    pub family: Family,
    pub head: Insuree,
    pub members: Vec<Insuree>,
    pub policies: Vec<Policy>,
    pub products: HashMap<Id, Product>,
}

/// What renewing one product costs a family now.
#[derive(Debug, Clone)]
pub struct Quote {
    pub product: Product,
    /// The policy being renewed.
    pub previous: Policy,
    pub value: Money,
    pub start: NaiveDate,
    pub expiry: NaiveDate,
    /// An Idle renewal of this product already waiting for payment.
    pub existing: Option<Policy>,
}

/// Who renews: the officer the policy names, and whether the member renewed themself.
#[derive(Debug, Clone)]
pub struct Renewer {
    pub officer: Option<Id>,
    pub self_renewed: bool,
    pub payer: Payer,
}

/// The records of one renewal, with their ids, ready to write.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub policy: Policy,
    pub rows: Vec<InsureePolicy>,
    pub payment: Payment,
}

impl FamilyFile {
    /// Reads `family`; its head is `found` if the head's record is missing.
    pub fn load(store: &Store, family: Family, found: Insuree) -> Result<FamilyFile, StoreError> {
        let head = store.insuree(family.head)?.unwrap_or(found);
        Ok(FamilyFile {
            members: store.family_members(family.id)?,
            policies: store.family_policies(family.id)?,
            products: store.products()?.into_iter().map(|p| (p.id, p)).collect(),
            family,
            head,
        })
    }

    /// The latest paid-for (non-Idle) policy, of `product` if given: the one renewed.
    pub fn latest_paid(&self, product: Option<Id>) -> Option<&Policy> {
        self.policies
            .iter()
            .filter(|p| p.status != PolicyStatus::Idle)
            .filter(|p| product.is_none_or(|id| p.product == id))
            .max_by_key(|p| p.expiry_date)
    }

    /// What `previous` renews into on `today`: its product, or that product's conversion
    /// product when it is off sale; `None` if neither can be sold.
    pub fn renewal_target(&self, previous: &Policy, today: NaiveDate) -> Option<&Product> {
        let product = self.products.get(&previous.product)?;
        renewal_product(|id| self.products.get(&id), product, today).ok()
    }

    /// An Idle renewal of `product` waiting for payment (starting after `after`, if given).
    pub fn waiting(&self, product: Id, after: Option<NaiveDate>) -> Option<&Policy> {
        self.policies.iter().find(|p| {
            p.product == product
                && p.status == PolicyStatus::Idle
                && p.stage == PolicyStage::Renewal
                && after.is_none_or(|d| p.start_date > d)
        })
    }

    /// The renewal of `previous` as `target` on `today`, dated and valued by the rules;
    /// `None` if the product gives no renewal period. A waiting renewal of `target` (starting
    /// after `after`, if given) is its `existing`, and its value the quote's.
    pub fn quote(
        &self,
        target: &Product,
        previous: &Policy,
        today: NaiveDate,
        after: Option<NaiveDate>,
    ) -> Option<Quote> {
        let period = renewal_period(target, today, previous.expiry_date).ok()?;
        let for_value: Vec<MemberForValue> = self.members.iter().map(Insuree::for_value).collect();
        let value = policy_value(
            target,
            &for_value,
            PolicyStage::Renewal,
            today,
            period.start,
            Some(previous.expiry_date),
        );
        let existing = self.waiting(target.id, after).cloned();
        Some(Quote {
            product: target.clone(),
            previous: previous.clone(),
            value: existing.as_ref().map(|e| e.value).unwrap_or(value),
            start: period.start,
            expiry: period.expiry,
            existing,
        })
    }

    /// Every product the family can renew on `today`, one quote each: per product it held,
    /// its latest paid-for policy renewed as that product or its conversion product.
    pub fn quotes(&self, today: NaiveDate) -> Vec<Quote> {
        let held: BTreeSet<Id> = self
            .policies
            .iter()
            .filter(|p| p.status != PolicyStatus::Idle)
            .map(|p| p.product)
            .collect();
        let mut quotes: Vec<Quote> = Vec::new();
        for previous in held.into_iter().filter_map(|id| self.latest_paid(Some(id))) {
            let Some(target) = self.renewal_target(previous, today) else {
                continue;
            };
            if quotes.iter().any(|q| q.product.id == target.id) {
                continue;
            }
            quotes.extend(self.quote(target, previous, today, None));
        }
        quotes
    }

    /// The records renewing as `q` says, by `by`, with ids from `next_id`.
    pub fn renewal<E>(
        &self,
        q: &Quote,
        by: &Renewer,
        now: (NaiveDate, DateTime<Utc>),
        mut next_id: impl FnMut() -> Result<Id, E>,
    ) -> Result<Renewal, E> {
        let (today, at) = now;
        let policy = Policy {
            id: next_id()?,
            uuid: Uuid::new_v4(),
            family: self.family.id,
            product: q.product.id,
            officer: by.officer,
            stage: PolicyStage::Renewal,
            status: PolicyStatus::Idle,
            value: q.value,
            enroll_date: today,
            start_date: q.start,
            effective_date: None,
            expiry_date: q.expiry,
            self_renewed: by.self_renewed,
        };
        let mut rows = Vec::with_capacity(self.members.len());
        for m in &self.members {
            rows.push(policy.member_row(next_id()?, m.id, today));
        }
        let line = PolicyLine {
            chfid: self.head.chfid,
            policy: policy.id,
            stage: PolicyStage::Renewal,
            amount: q.value,
        };
        let payment = payments::intent(next_id()?, &q.product, line, &by.payer, at);
        Ok(Renewal {
            policy,
            rows,
            payment,
        })
    }
}

impl Renewal {
    /// Writes the renewal in `tx`; returns the control number when known now.
    pub fn write_in(
        &self,
        tx: &mut WriteTx<'_>,
        product: &Product,
        assign: AssignControlNumber<'_>,
    ) -> Result<Option<String>, TxError> {
        tx.put_policy(&self.policy)?;
        for row in &self.rows {
            tx.put_insuree_policy(row)?;
        }
        payments::create_in(tx, &self.payment, product, assign)
    }
}
