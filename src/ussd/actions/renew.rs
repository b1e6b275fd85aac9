//! Renew: quote the renewal of a family's product (or its conversion product), then confirm
//! it in one durable transaction.
//!
//! Confirm writes, atomically and flushed before the member sees the number: an Idle 'R'
//! policy with its member rows, a payment intent with its detail, a control number (given by
//! `payments::assign_control_number`: from the product's pool, the simulator, or a queued
//! GePG bill whose number comes later by SMS), the journal entry of this step, the family →
//! payment index entry, and the control-number SMS.
//! A family that already has an Idle renewal of that product is shown that one instead; a
//! resumed or replayed confirm finds its journal entry and creates nothing.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::payments::{index_in_tx, of_family};
use crate::domain::show_date;
use super::{ActionCtx, ActionError, Outcome};
use crate::domain::{
    policy_value, renewal_period, renewal_product, Chfid, Id, Insuree, InsureePolicy,
    MemberForValue, Money, Payment, PaymentDetail, Policy, PolicyStage, PolicyStatus, Product,
};
use crate::sms::{self, OutboundSms};
use crate::store::{codec, Abort, StoreError, WriteError};

use crate::ussd::session::JOURNAL_NS;

/// What renewing one product costs a family now.
struct Quote {
    product: Product,
    previous: Policy,
    value: Money,
    start: chrono::NaiveDate,
    expiry: chrono::NaiveDate,
    /// An Idle renewal of this product already waiting for payment.
    existing: Option<Policy>,
}

struct FamilyView {
    head: Insuree,
    members: Vec<Insuree>,
    quotes: Vec<Quote>,
}

fn family_view(ctx: &ActionCtx) -> Result<Option<FamilyView>, ActionError> {
    let store = &ctx.store;
    let Ok(chfid) = Chfid::parse(ctx.var("chfid")) else {
        return Ok(None);
    };
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(None);
    };
    let Some(family) = store.family(insuree.family)? else {
        return Ok(None);
    };
    let head = store.insuree(family.head)?.unwrap_or(insuree);
    let members = store.family_members(family.id)?;
    let policies = store.family_policies(family.id)?;
    let products: HashMap<Id, Product> = store.products()?.into_iter().map(|p| (p.id, p)).collect();
    // The latest policy per product that is not itself an unpaid renewal.
    let mut latest: BTreeMap<Id, &Policy> = BTreeMap::new();
    for p in policies.iter().filter(|p| p.status != PolicyStatus::Idle) {
        let e = latest.entry(p.product).or_insert(p);
        if p.expiry_date > e.expiry_date {
            *e = p;
        }
    }
    let for_value: Vec<MemberForValue> = members
        .iter()
        .map(|m| MemberForValue {
            dob: m.dob,
            relationship: m.relationship,
        })
        .collect();
    let mut quotes: Vec<Quote> = Vec::new();
    for previous in latest.values() {
        let Some(product) = products.get(&previous.product) else {
            continue;
        };
        let Ok(target) = renewal_product(|id| products.get(&id), product, ctx.today) else {
            continue;
        };
        if quotes.iter().any(|q| q.product.id == target.id) {
            continue;
        }
        let Ok(period) = renewal_period(target, ctx.today, previous.expiry_date) else {
            continue;
        };
        let value = policy_value(
            target,
            &for_value,
            PolicyStage::Renewal,
            ctx.today,
            period.start,
            Some(previous.expiry_date),
        );
        let existing = policies
            .iter()
            .find(|p| {
                p.product == target.id
                    && p.status == PolicyStatus::Idle
                    && p.stage == PolicyStage::Renewal
            })
            .cloned();
        quotes.push(Quote {
            product: target.clone(),
            previous: (*previous).clone(),
            value: existing.as_ref().map(|e| e.value).unwrap_or(value),
            start: period.start,
            expiry: period.expiry,
            existing,
        });
    }
    Ok(Some(FamilyView {
        head,
        members,
        quotes,
    }))
}

/// The products the family can renew, with amounts, as a list to choose from.
pub fn quote(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let Some(view) = family_view(ctx)? else {
        return Ok(Outcome::named("not_found"));
    };
    if view.quotes.is_empty() {
        return Ok(Outcome::named("not_renewable"));
    }
    let items = view
        .quotes
        .iter()
        .map(|q| {
            (
                format!("{} TZS {}", q.product.code, q.value),
                q.product.code.clone(),
            )
        })
        .collect();
    let mut out = Outcome::named("ok");
    out.lists.insert("products".into(), items);
    Ok(out)
}

fn journaled(ctx: &ActionCtx) -> Result<Option<Outcome>, ActionError> {
    match ctx.store.aux_get(JOURNAL_NS, ctx.journal_key.as_bytes())? {
        Some(bytes) => Ok(codec::decode(&bytes).ok()),
        None => Ok(None),
    }
}

pub fn confirm(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    if let Some(done) = journaled(ctx)? {
        return Ok(done);
    }
    let Some(view) = family_view(ctx)? else {
        return Ok(Outcome::named("not_found"));
    };
    let wanted = ctx.var("product");
    let Some(q) = view
        .quotes
        .iter()
        .find(|q| q.product.code.eq_ignore_ascii_case(wanted))
    else {
        return Ok(Outcome::named("not_renewable"));
    };
    let base = Outcome::named("ok")
        .var("product", q.product.code.clone())
        .var("amount", q.value.to_string())
        .var("start", show_date(q.start));
    if let Some(existing) = &q.existing {
        let payment = of_family(&ctx.store, existing.family)?
            .into_iter()
            .find(|p| p.details.iter().any(|d| d.policy == Some(existing.id)));
        return Ok(match payment.and_then(|p| p.control_number) {
            Some(cn) => Outcome {
                name: "existing".into(),
                ..base.var("control_number", cn)
            },
            None => Outcome {
                name: "pending".into(),
                ..base
            },
        });
    }
    write_renewal(ctx, &view, q, base)
}

fn write_renewal(
    ctx: &ActionCtx,
    view: &FamilyView,
    q: &Quote,
    base: Outcome,
) -> Result<Outcome, ActionError> {
    let head_chfid = view.head.chfid.to_string();
    let written = ctx.store.write_durable_blocking(|tx| {
        // A replay that raced the first run finds the entry here, inside the transaction.
        if let Some(bytes) = tx.aux_get(JOURNAL_NS, ctx.journal_key.as_bytes())? {
            return codec::decode::<Outcome>(&bytes).map_err(|e| {
                Abort::Store(
                    StoreError::Codec {
                        tree: "aux",
                        source: e,
                    }
                    .into(),
                )
            });
        }
        let policy = Policy {
            id: tx.next_id()?,
            uuid: Uuid::new_v4(),
            family: view.head.family,
            product: q.product.id,
            officer: q.previous.officer,
            stage: PolicyStage::Renewal,
            status: PolicyStatus::Idle,
            value: q.value,
            enroll_date: ctx.today,
            start_date: q.start,
            effective_date: None,
            expiry_date: q.expiry,
            self_renewed: true,
        };
        tx.put_policy(&policy)?;
        for m in &view.members {
            tx.put_insuree_policy(&InsureePolicy {
                id: tx.next_id()?,
                insuree: m.id,
                policy: policy.id,
                enrollment_date: ctx.today,
                start_date: q.start,
                effective_date: None,
                expiry_date: q.expiry,
            })?;
        }
        let payment_id = tx.next_id()?;
        let line = PaymentDetail {
            product_code: q.product.code.clone(),
            chfid: view.head.chfid,
            stage: PolicyStage::Renewal,
            policy: Some(policy.id),
            expected_amount: q.value,
            amount: None,
            premium: None,
        };
        let mut payment = Payment::intent(
            payment_id,
            Uuid::new_v4(),
            line,
            Some(ctx.msisdn.clone()),
            ctx.lang,
            ctx.now,
        );
        let number =
            crate::payments::assign_control_number(tx, &mut payment, &q.product, ctx.gepg)?
                .number()
                .map(String::from);
        tx.put_payment(&payment)?;
        index_in_tx(tx, policy.family, payment_id)?;
        let outcome = match &number {
            Some(cn) => {
                let vars = HashMap::from([
                    ("control_number", cn.clone()),
                    ("amount", q.value.to_string()),
                    ("chfid", head_chfid.clone()),
                    ("product", q.product.code.clone()),
                ]);
                let text = ctx
                    .templates
                    .render("control_number", ctx.lang, &vars)
                    .map_err(Abort::User)?;
                sms::enqueue(
                    tx,
                    &format!("payment:{payment_id}:control_number"),
                    &OutboundSms {
                        to: ctx.msisdn.clone(),
                        text,
                        template: "control_number".into(),
                        language: ctx.lang,
                        reference: format!("payment:{payment_id}"),
                    },
                )?;
                base.clone().var("control_number", cn.clone())
            }
            None => Outcome {
                name: "pending".into(),
                ..base.clone()
            },
        };
        let bytes = codec::encode(&outcome).map_err(|e| {
            Abort::Store(
                StoreError::Codec {
                    tree: "aux",
                    source: e,
                }
                .into(),
            )
        })?;
        tx.aux_put(JOURNAL_NS, ctx.journal_key.as_bytes(), &bytes)?;
        Ok(outcome)
    });
    match written {
        Ok(o) => Ok(o),
        Err(WriteError::Aborted(e)) => Err(ActionError::Template(e)),
        Err(WriteError::Store(e)) => Err(ActionError::Store(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GepgMode;
    use crate::demo::{self, DemoOptions};
    use crate::domain::{Language, Msisdn};
    use crate::store::{Store, TxResult};

    fn ctx(store: &Store, today: chrono::NaiveDate, chfid: &str) -> ActionCtx {
        let templates = crate::sms::Templates::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sms-templates"
        )))
        .unwrap();
        ActionCtx {
            store: store.clone(),
            templates: std::sync::Arc::new(templates),
            gepg: GepgMode::Simulator,
            msisdn: Msisdn::parse("255754100002").unwrap(),
            lang: Language::Sw,
            today,
            now: chrono::Utc::now(),
            vars: [("chfid".to_string(), chfid.to_string())].into(),
            journal_key: "255754100002/test/renew_do".into(),
        }
    }

    #[test]
    fn a_legacy_product_is_renewed_as_its_conversion_product_once() {
        let store = Store::open_temporary().unwrap();
        let opts = DemoOptions::default();
        demo::seed_if_empty(&store, &opts).unwrap();
        // Neema's family held the legacy CHF00, which is no longer sold.
        let head = store
            .insuree_by_chfid(Chfid::parse("100000014").unwrap())
            .unwrap()
            .unwrap();
        let legacy = store.product_by_code("CHF00").unwrap().unwrap();
        let mut p = store.family_policies(head.family).unwrap().remove(0);
        p.product = legacy.id;
        store
            .write(|tx| -> TxResult<()> { Ok(tx.put_policy(&p)?) })
            .unwrap();
        let c = ctx(&store, opts.today, "100000014");
        let q = quote(&c).unwrap();
        assert_eq!(q.name, "ok");
        let items = &q.lists["products"];
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0].1, "CHF01", "converted: {items:?}");
        // Confirming it twice (a replay under the same journal key) writes one renewal.
        let mut c = c;
        c.vars.insert("product".into(), "CHF01".into());
        let first = confirm(&c).unwrap();
        let again = confirm(&c).unwrap();
        assert_eq!(first.name, "ok");
        assert_eq!(first, again);
        let idle: Vec<_> = store
            .family_policies(head.family)
            .unwrap()
            .into_iter()
            .filter(|p| p.status == PolicyStatus::Idle)
            .collect();
        assert_eq!(idle.len(), 1);
        assert_eq!(
            idle[0].product,
            store.product_by_code("CHF01").unwrap().unwrap().id
        );
        // An unknown CHFID is not found.
        assert_eq!(
            quote(&ctx(&store, opts.today, "555555556")).unwrap().name,
            "not_found"
        );
    }
}
