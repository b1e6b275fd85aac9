//! Renew: quote the renewal of a family's product (or its conversion product), then confirm
//! it in one durable transaction. The renewal itself is [`crate::app::renewal`]'s; this
//! module adds the member's journey: the choice list, the journal, the control-number SMS.
//!
//! Confirm writes, atomically and flushed before the member sees the number: the renewal
//! (an Idle 'R' policy, its member rows, a payment intent indexed by family), a control
//! number (given by `payments::assign_control_number`: from the product's pool, the
//! simulator, or a queued GePG bill whose number comes later by SMS), the journal entry of
//! this step and the control-number SMS.
//! A family that already has an Idle renewal of that product is shown that one instead; a
//! resumed or replayed confirm finds its journal entry and creates nothing.

use std::collections::HashMap;

use super::{ActionCtx, ActionError, Outcome};
use crate::app::payments::{control_number_of_policy, Payer};
use crate::app::renewal::{FamilyFile, Quote, Renewer};
use crate::domain::{show_date, Chfid, Payment, Product};
use crate::sms::{self, OutboundSms};
use crate::store::{codec, Abort, StoreError, TxError, WriteError, WriteTx};
use crate::ussd::session::JOURNAL_NS;

struct FamilyView {
    file: FamilyFile,
    quotes: Vec<Quote>,
}

fn family_view(ctx: &ActionCtx) -> Result<Option<FamilyView>, ActionError> {
    let store = &ctx.store;
    let Ok(chfid) = Chfid::from_central(ctx.var("chfid")) else {
        return Ok(None);
    };
    let Some(insuree) = store.insuree_by_chfid(chfid)? else {
        return Ok(None);
    };
    let Some(family) = store.family(insuree.family)? else {
        return Ok(None);
    };
    let file = FamilyFile::load(store, family, insuree)?;
    let quotes = file.quotes(ctx.today);
    Ok(Some(FamilyView { file, quotes }))
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
        return Ok(
            match control_number_of_policy(&ctx.store, existing.family, existing.id)? {
                Some(cn) => Outcome {
                    name: "existing".into(),
                    ..base.var("control_number", cn)
                },
                None => Outcome {
                    name: "pending".into(),
                    ..base
                },
            },
        );
    }
    write_renewal(ctx, &view.file, q, base)
}

/// Whether the control number SMS may go to the caller: always to a phone of the family,
/// else within the SMS cost guard (the screen shows the number either way).
fn sms_allowed(ctx: &ActionCtx, file: &FamilyFile) -> bool {
    let mine = |p: &Option<crate::domain::Msisdn>| p.as_ref() == Some(&ctx.msisdn);
    if mine(&file.head.phone) || file.members.iter().any(|m| mine(&m.phone)) {
        return true;
    }
    let token = crate::sms::inbound::fnv64(&[ctx.journal_key.as_bytes()]);
    ctx.sms_guard
        .as_ref()
        .is_none_or(|g| g.allow_unknown(&ctx.msisdn, token, std::time::Instant::now()))
}

fn codec_abort(e: codec::CodecError) -> Abort<crate::sms::TemplateError> {
    Abort::Store(
        StoreError::Codec {
            tree: "aux",
            source: e,
        }
        .into(),
    )
}

fn write_renewal(
    ctx: &ActionCtx,
    file: &FamilyFile,
    q: &Quote,
    base: Outcome,
) -> Result<Outcome, ActionError> {
    let by = Renewer {
        officer: q.previous.officer,
        self_renewed: true,
        payer: Payer {
            phone: Some(ctx.msisdn.clone()),
            language: ctx.lang,
            officer_code: None,
        },
    };
    let gepg = ctx.gepg;
    let assign = |tx: &mut WriteTx<'_>, p: &mut Payment, product: &Product| {
        let given = crate::payments::assign_control_number(tx, p, product, gepg)?;
        Ok::<_, TxError>(given.number().map(String::from))
    };
    let written = ctx.store.write_durable_blocking(|tx| {
        // A replay that raced the first run finds the entry here, inside the transaction.
        if let Some(bytes) = tx.aux_get(JOURNAL_NS, ctx.journal_key.as_bytes())? {
            return codec::decode::<Outcome>(&bytes).map_err(codec_abort);
        }
        let renewal = file.renewal(q, &by, (ctx.today, ctx.now), || tx.next_id())?;
        let number = renewal.write_in(tx, &q.product, &assign)?;
        let payment_id = renewal.payment.id;
        let outcome = match &number {
            Some(cn) if !sms_allowed(ctx, file) => base.clone().var("control_number", cn.clone()),
            Some(cn) => {
                let vars = HashMap::from([
                    ("control_number", cn.clone()),
                    ("amount", q.value.to_string()),
                    ("chfid", file.head.chfid.to_string()),
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
        let bytes = codec::encode(&outcome).map_err(codec_abort)?;
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
    use crate::domain::PolicyStatus;
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
            privacy: Default::default(),
            msisdn: Msisdn::parse("255754100002").unwrap(),
            lang: Language::Sw,
            today,
            now: chrono::Utc::now(),
            vars: [("chfid".to_string(), chfid.to_string())].into(),
            journal_key: "255754100002/test/renew_do".into(),
            sms_guard: None,
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
