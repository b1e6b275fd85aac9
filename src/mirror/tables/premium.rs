//! `tblPremium` ↔ [`Premium`].

use super::prelude::*;
use super::{cents, money};
use crate::domain::{PayType, Premium};

const POLICY: Col = Col::new("PolicyID", Ty::I32);
const AMOUNT: Col = Col::new("Amount", Ty::Money);
const RECEIPT: Col = Col::new("Receipt", Ty::Text);
const PAY_DATE: Col = Col::new("PayDate", Ty::Date);
const PAY_TYPE: Col = Col::new("PayType", Ty::Text);
const IS_PHOTO_FEE: Col = Col::new("isPhotoFee", Ty::Bool);

pub const DESC: Desc = Desc {
    kind: "premium",
    table: Table {
        name: "tblPremium",
        pk: "PremiumId",
        uuid: Some("PremiumUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblPremium_PremiumId_seq",
        columns: &[POLICY, AMOUNT, RECEIPT, PAY_DATE, PAY_TYPE, IS_PHOTO_FEE],
        unmapped: &[
            "PayerID",
            "isOffline",
            "ReportingId",
            "CreatedDate",
            "Source",
            "SourceVersion",
        ],
    },
    natural_key: &[],
    pull: Some(Pull::PLAIN),
};

const PAY_TYPES: [PayType; 4] = [
    PayType::Bank,
    PayType::Cash,
    PayType::Mobile,
    PayType::Funding,
];

impl Mapped for Premium {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        vec![("policy", self.policy)]
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            POLICY.int(Some(refs.get(("policy", self.policy))?)),
            AMOUNT.int(cents(self.amount)),
            RECEIPT.text(Some(self.receipt.clone())),
            PAY_DATE.date(Some(self.pay_date)),
            PAY_TYPE.text(Some(self.pay_type.code().to_string())),
            IS_PHOTO_FEE.bool(Some(self.is_photo_fee)),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let pay_type = r.one_of(PAY_TYPE, &PAY_TYPES, PayType::code)?;
        Ok(Some(Premium {
            id,
            uuid: r.uuid()?,
            policy: ids.get("policy", r.required(POLICY, r.int(POLICY)?)?)?,
            amount: money(r.int(AMOUNT)?),
            receipt: r.required(RECEIPT, r.text(RECEIPT)?)?,
            pay_date: r.required(PAY_DATE, r.date(PAY_DATE)?)?,
            pay_type,
            is_photo_fee: r.bool(IS_PHOTO_FEE)?.unwrap_or(false),
        }))
    }
}
