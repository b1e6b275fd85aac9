//! `tblPayment` (with its current `tblPaymentDetails` lines and control number on the
//! pull) ↔ [`Payment`], and `tblPaymentDetails` ← [`PaymentDetail`] on the way out.

use super::insuree::chfid;
use super::policy::stage;
use super::prelude::*;
use super::Flagged;
use super::{cents, money, phone, phone_text};
use crate::domain::{Language, Money, Payment, PaymentDetail, PaymentStatus};

const EXPECTED_AMOUNT: Col = Col::new("ExpectedAmount", Ty::Money);
const RECEIVED_AMOUNT: Col = Col::new("ReceivedAmount", Ty::Money);
const OFFICER_CODE: Col = Col::new("OfficerCode", Ty::Text);
const PHONE_NUMBER: Col = Col::new("PhoneNumber", Ty::Text);
const REQUEST_DATE: Col = Col::new("RequestDate", Ty::Ts);
const RECEIVED_DATE: Col = Col::new("ReceivedDate", Ty::Ts);
const STATUS: Col = Col::new("PaymentStatus", Ty::I32);
const TRANSACTION_NO: Col = Col::new("TransactionNo", Ty::Text);
const PAYMENT_ORIGIN: Col = Col::new("PaymentOrigin", Ty::Text);
const MATCHED_DATE: Col = Col::new("MatchedDate", Ty::Ts);
const RECEIPT_NO: Col = Col::new("ReceiptNo", Ty::Text);
const PAYMENT_DATE: Col = Col::new("PaymentDate", Ty::Ts);
const REJECTED_REASON: Col = Col::new("RejectedReason", Ty::Text);
const LANGUAGE: Col = Col::new("LanguageName", Ty::Text);

/// The pull's names for the payment's newest current control number and its current
/// detail lines (`ProductCode|InsuranceNumber|PolicyStage|ExpectedAmount cents`).
const CONTROL_NUMBER: &str = "control_number";
const DETAIL_LINES: &str = "detail_lines";

pub const DESC: Desc = Desc {
    kind: "payment",
    table: Table {
        name: "tblPayment",
        pk: "PaymentID",
        uuid: Some("PaymentUUID"),
        uuid_is_uuid_type: true,
        audit: "AuditedUSerID",
        seq: "tblPayment_PaymentID_seq",
        columns: &[
            EXPECTED_AMOUNT,
            RECEIVED_AMOUNT,
            OFFICER_CODE,
            PHONE_NUMBER,
            REQUEST_DATE,
            RECEIVED_DATE,
            STATUS,
            TRANSACTION_NO,
            PAYMENT_ORIGIN,
            MATCHED_DATE,
            RECEIPT_NO,
            PAYMENT_DATE,
            REJECTED_REASON,
            LANGUAGE,
        ],
        unmapped: &[
            "DateLastSMS",
            "TypeOfPayment",
            "TransferFee",
            "PayerPhoneNumber",
        ],
    },
    natural_key: &[],
    pull: Some(Pull {
        extra: &[
            (
                CONTROL_NUMBER,
                r#"SELECT c."ControlNumber" FROM "tblControlNumber" c
                   WHERE c."PaymentID" = t."PaymentID" AND c."ValidityTo" IS NULL
                   ORDER BY c."ControlNumberID" DESC LIMIT 1"#,
            ),
            (
                DETAIL_LINES,
                r#"ARRAY(SELECT d."ProductCode" || '|' || d."InsuranceNumber" || '|' ||
                         coalesce(d."PolicyStage", 'N') || '|' ||
                         coalesce((d."ExpectedAmount"*100)::int8, 0)::text
                  FROM "tblPaymentDetails" d
                  WHERE d."PaymentID" = t."PaymentID" AND d."ValidityTo" IS NULL
                  ORDER BY d."PaymentDetailsID")"#,
            ),
        ],
        // Open payments only (not matched, not rejected).
        only: Some(r#""PaymentStatus" BETWEEN 0 AND 4"#),
    }),
};

const PAYMENT: Col = Col::new("PaymentID", Ty::I64);
const PRODUCT_CODE: Col = Col::new("ProductCode", Ty::Text);
const INSURANCE_NUMBER: Col = Col::new("InsuranceNumber", Ty::Text);
const POLICY_STAGE: Col = Col::new("PolicyStage", Ty::Text);
const AMOUNT: Col = Col::new("Amount", Ty::Money);
const PREMIUM: Col = Col::new("PremiumID", Ty::I32);
const LINE_EXPECTED_AMOUNT: Col = Col::new("ExpectedAmount", Ty::Money);

/// `tblPaymentDetails`: written with its payment (never on its own, never pulled on its
/// own), found by its natural key.
pub const DETAILS: Desc = Desc {
    kind: "payment_detail",
    table: Table {
        name: "tblPaymentDetails",
        pk: "PaymentDetailsID",
        uuid: None,
        uuid_is_uuid_type: false,
        audit: "AuditedUserId",
        seq: "tblPaymentDetails_PaymentDetailsID_seq",
        columns: &[
            PAYMENT,
            PRODUCT_CODE,
            INSURANCE_NUMBER,
            POLICY_STAGE,
            AMOUNT,
            PREMIUM,
            LINE_EXPECTED_AMOUNT,
        ],
        unmapped: &["enrollmentDate"],
    },
    natural_key: &[PAYMENT, INSURANCE_NUMBER, PRODUCT_CODE],
    pull: None,
};

/// One `tblPaymentDetails` row of payment `payment` (central id). A premium not mirrored
/// yet is left out (NULL) rather than failing the payment.
pub fn detail_row(payment: i64, d: &PaymentDetail, refs: &Refs<'_>) -> Row {
    vec![
        PAYMENT.int(Some(payment)),
        PRODUCT_CODE.text(Some(d.product_code.clone())),
        INSURANCE_NUMBER.text(Some(d.chfid.to_string())),
        POLICY_STAGE.text(Some(d.stage.code().to_string())),
        AMOUNT.int(d.amount.map(|m| m.cents())),
        PREMIUM.int(refs.lenient(d.premium.map(|p| ("premium", p)))),
        LINE_EXPECTED_AMOUNT.int(cents(d.expected_amount)),
    ]
}

/// The detail lines of the pull (see [`DETAIL_LINES`]).
fn details(r: &Named<'_>) -> Result<Vec<PaymentDetail>, MirrorError> {
    let lines: Vec<String> = r.get(DETAIL_LINES)?;
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let parts: Vec<&str> = l.split('|').collect();
        let [code, number, stage_code, cents] = parts[..] else {
            return Err(r.bad(format!("detail {l:?}")));
        };
        out.push(PaymentDetail {
            product_code: code.to_string(),
            chfid: chfid(r, INSURANCE_NUMBER.name, number)?,
            stage: stage(Some(stage_code)),
            policy: None,
            expected_amount: Money(cents.parse().unwrap_or(0)),
            amount: None,
            premium: None,
        });
    }
    Ok(out)
}

/// What our input rules would have refused in a central payment row (counted, kept).
pub(super) fn flag(r: &Named<'_>, f: &mut Flagged) -> Result<(), MirrorError> {
    f.phone(r.text(PHONE_NUMBER)?.as_deref());
    Ok(())
}

impl Mapped for Payment {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        let premiums = self.details.iter().filter_map(|d| d.premium);
        premiums.map(|p| ("premium", p)).collect()
    }

    fn row(&self, _refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            EXPECTED_AMOUNT.int(cents(self.expected_amount)),
            RECEIVED_AMOUNT.int(self.received_amount.map(|m| m.cents())),
            OFFICER_CODE.text(self.officer_code.clone()),
            PHONE_NUMBER.text(phone_text(&self.phone)),
            REQUEST_DATE.ts(Some(self.request_date)),
            RECEIVED_DATE.ts(self.received_date),
            STATUS.int(Some(i64::from(self.status.code()))),
            TRANSACTION_NO.text(self.transaction_no.clone()),
            PAYMENT_ORIGIN.text(self.payment_origin.clone()),
            MATCHED_DATE.ts(self.matched_date),
            RECEIPT_NO.text(self.receipt_no.clone()),
            PAYMENT_DATE.ts(self.payment_date),
            REJECTED_REASON.text(self.rejected_reason.clone()),
            LANGUAGE.text(Some(self.language.code().to_string())),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let status = r.int(STATUS)?;
        let status = status
            .and_then(|s| i32::try_from(s).ok())
            .and_then(PaymentStatus::from_code)
            .ok_or_else(|| r.bad(format!("{} {status:?}", STATUS.name)))?;
        Ok(Some(Payment {
            id,
            uuid: r.uuid()?,
            status,
            expected_amount: money(r.int(EXPECTED_AMOUNT)?),
            received_amount: r.int(RECEIVED_AMOUNT)?.map(Money),
            officer_code: r.text(OFFICER_CODE)?,
            phone: phone(r.text(PHONE_NUMBER)?),
            language: r
                .text(LANGUAGE)?
                .as_deref()
                .and_then(Language::parse)
                .unwrap_or_default(),
            request_date: r.ts(REQUEST_DATE)?.unwrap_or_else(chrono::Utc::now),
            received_date: r.ts(RECEIVED_DATE)?,
            payment_date: r.ts(PAYMENT_DATE)?,
            matched_date: r.ts(MATCHED_DATE)?,
            transaction_no: r.text(TRANSACTION_NO)?,
            receipt_no: r.text(RECEIPT_NO)?,
            payment_origin: r.text(PAYMENT_ORIGIN)?,
            rejected_reason: r.text(REJECTED_REASON)?,
            control_number: r.get(CONTROL_NUMBER)?,
            details: details(r)?,
        }))
    }
}
