//! The payment notification: `gepgPmtSpInfo`, one `PymtTrxInf` a payment.

use super::{format_amount, Element, Writer, XmlError};
use crate::domain::Money;

/// One `PymtTrxInf` of a payment notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmtTrx {
    pub trx_id: String,
    pub sp_code: String,
    pub pay_ref_id: String,
    pub bill_id: String,
    pub control_number: String,
    pub bill_amt: Money,
    pub paid_amt: Money,
    pub pay_opt: String,
    pub ccy: String,
    /// As sent (kept raw for the record; parsed leniently where a date is needed).
    pub trx_date: String,
    pub channel: String,
    pub payer_phone: String,
    pub payer_name: String,
    pub payer_email: String,
    pub psp_receipt: String,
    pub psp_name: String,
    pub ctr_acc: String,
}

/// `gepgPmtSpInfo`: the payment notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmtSpInfo {
    pub payments: Vec<PmtTrx>,
}

impl PmtSpInfo {
    pub const NAME: &'static str = "gepgPmtSpInfo";

    pub fn parse(el: &Element) -> Result<PmtSpInfo, XmlError> {
        const E: &str = "PymtTrxInf";
        let payments = el.each(Self::NAME, "PymtTrxInf", |t| {
            Ok(PmtTrx {
                trx_id: t.required(E, "TrxId", &[])?,
                sp_code: t.required(E, "SpCode", &[])?,
                pay_ref_id: t.text_of(&["PayRefId"]).into(),
                bill_id: t.text_of(&["BillId"]).into(),
                control_number: t.required(E, "PayCtrNum", &["PayCntrNum", "BillCtrNum"])?,
                bill_amt: t.money(E, "BillAmt", false)?,
                paid_amt: t.money(E, "PaidAmt", true)?,
                pay_opt: t.text_of(&["BillPayOpt"]).into(),
                ccy: t.text_of(&["CCy", "Ccy", "CCY"]).into(),
                trx_date: t.text_of(&["TrxDtTm"]).into(),
                channel: t.text_of(&["UsdPayChnl"]).into(),
                payer_phone: t.text_of(&["PyrCellNum"]).into(),
                payer_name: t.text_of(&["PyrName"]).into(),
                payer_email: t.text_of(&["PyrEmail"]).into(),
                psp_receipt: t.text_of(&["PspReceiptNumber"]).into(),
                psp_name: t.text_of(&["PspName"]).into(),
                ctr_acc: t.text_of(&["CtrAccNum"]).into(),
            })
        })?;
        Ok(PmtSpInfo { payments })
    }

    /// In the element order of the zechtz test sample.
    pub fn to_xml(&self) -> String {
        Writer::default()
            .open(Self::NAME)
            .items("PymtTrxInf", &self.payments, |w, p| {
                w.fields(&[
                    ("TrxId", &p.trx_id),
                    ("SpCode", &p.sp_code),
                    ("PayRefId", &p.pay_ref_id),
                    ("BillId", &p.bill_id),
                    ("PayCtrNum", &p.control_number),
                    ("BillAmt", &format_amount(p.bill_amt)),
                    ("PaidAmt", &format_amount(p.paid_amt)),
                    ("BillPayOpt", &p.pay_opt),
                    ("CCy", &p.ccy),
                    ("TrxDtTm", &p.trx_date),
                    ("UsdPayChnl", &p.channel),
                    ("PyrCellNum", &p.payer_phone),
                    ("PyrName", &p.payer_name),
                    ("PyrEmail", &p.payer_email),
                    ("PspReceiptNumber", &p.psp_receipt),
                    ("PspName", &p.psp_name),
                    ("CtrAccNum", &p.ctr_acc),
                ]);
            })
            .close(Self::NAME)
            .finish()
    }
}
