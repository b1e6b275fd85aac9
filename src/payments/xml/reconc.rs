//! Reconciliation: `gepgSpReconcReq` (the day we ask about) and `gepgSpReconcResp` (GePG's
//! report of it).

use chrono::NaiveDate;

use super::{format_amount, split_codes, Element, Writer, XmlError};
use crate::domain::Money;

/// `gepgSpReconcReq`: the transactions of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcReq {
    pub req_id: String,
    pub sp_code: String,
    pub sp_sys_id: String,
    pub date: NaiveDate,
    /// 1 = successful transactions, 2 = failed/exceptions.
    pub option: u8,
}

impl ReconcReq {
    pub const NAME: &'static str = "gepgSpReconcReq";

    pub fn to_xml(&self) -> String {
        Writer::default()
            .open(Self::NAME)
            .field("SpReconcReqId", &self.req_id)
            .field("SpCode", &self.sp_code)
            .field("SpSysId", &self.sp_sys_id)
            .field("TnxDt", &self.date.format("%Y-%m-%d").to_string())
            .field("ReconcOpt", &self.option.to_string())
            .close(Self::NAME)
            .finish()
    }

    pub fn parse(el: &Element) -> Result<ReconcReq, XmlError> {
        const E: &str = "gepgSpReconcReq";
        let raw = el.required(E, "TnxDt", &[])?;
        Ok(ReconcReq {
            req_id: el.required(E, "SpReconcReqId", &[])?,
            sp_code: el.required(E, "SpCode", &[])?,
            sp_sys_id: el.text_of(&["SpSysId"]).into(),
            date: NaiveDate::parse_from_str(&raw, "%Y-%m-%d").map_err(|_| XmlError::Invalid {
                element: E,
                field: "TnxDt",
                value: raw.clone(),
            })?,
            option: el.text_of(&["ReconcOpt"]).parse().unwrap_or(1),
        })
    }
}

/// One line of a reconciliation report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcLine {
    pub bill_id: String,
    pub control_number: String,
    pub psp_trx_id: String,
    pub paid_amt: Money,
    pub ccy: String,
    pub pay_ref_id: String,
    pub trx_date: String,
    pub ctr_acc: String,
    pub channel: String,
    pub psp_name: String,
    pub payer_phone: String,
    pub payer_name: String,
}

/// `gepgSpReconcResp`: GePG's report of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcResp {
    pub req_id: String,
    pub sp_code: String,
    pub status_codes: Vec<String>,
    pub lines: Vec<ReconcLine>,
}

impl ReconcResp {
    pub const NAME: &'static str = "gepgSpReconcResp";

    pub fn parse(el: &Element) -> Result<ReconcResp, XmlError> {
        const E: &str = "ReconcTrxInf";
        let batch = el.child(&["ReconcBatchInfo"]).cloned().unwrap_or_default();
        let trans = el.child(&["ReconcTrans"]).cloned().unwrap_or_default();
        // A day without transactions is a valid report: no `each` (which wants one or more).
        let line = |t: &Element| {
            Ok(ReconcLine {
                bill_id: t.text_of(&["SpBillId", "BillId"]).into(),
                control_number: t.required(E, "BillCtrNum", &["PayCtrNum", "PayCntrNum"])?,
                psp_trx_id: t.text_of(&["pspTrxId", "PspTrxId", "TrxId"]).into(),
                paid_amt: t.money(E, "PaidAmt", true)?,
                ccy: t.text_of(&["CCy", "Ccy", "CCY"]).into(),
                pay_ref_id: t.required(E, "PayRefId", &[])?,
                trx_date: t.text_of(&["TrxDtTm"]).into(),
                ctr_acc: t.text_of(&["CtrAccNum"]).into(),
                channel: t.text_of(&["UsdPayChnl"]).into(),
                psp_name: t.text_of(&["PspName"]).into(),
                payer_phone: t.text_of(&["DptCellNum", "PyrCellNum"]).into(),
                payer_name: t.text_of(&["DptName", "PyrName"]).into(),
            })
        };
        let lines = trans
            .all("ReconcTrxInf")
            .map(line)
            .collect::<Result<Vec<_>, XmlError>>()?;
        Ok(ReconcResp {
            req_id: batch.text_of(&["SpReconcReqId"]).into(),
            sp_code: batch.text_of(&["SpCode"]).into(),
            status_codes: split_codes(batch.text_of(&["ReconcStsCode"])),
            lines,
        })
    }

    pub fn to_xml(&self) -> String {
        Writer::default()
            .open(Self::NAME)
            .open("ReconcBatchInfo")
            .field("SpReconcReqId", &self.req_id)
            .field("SpCode", &self.sp_code)
            .field("SpName", "CHF")
            .field("ReconcStsCode", &self.status_codes.join(";"))
            .close("ReconcBatchInfo")
            .open("ReconcTrans")
            .items("ReconcTrxInf", &self.lines, |w, l| {
                w.fields(&[
                    ("SpBillId", &l.bill_id),
                    ("BillCtrNum", &l.control_number),
                    ("pspTrxId", &l.psp_trx_id),
                    ("PaidAmt", &format_amount(l.paid_amt)),
                    ("CCy", &l.ccy),
                    ("PayRefId", &l.pay_ref_id),
                    ("TrxDtTm", &l.trx_date),
                    ("CtrAccNum", &l.ctr_acc),
                    ("UsdPayChnl", &l.channel),
                    ("PspName", &l.psp_name),
                    ("DptCellNum", &l.payer_phone),
                    ("DptName", &l.payer_name),
                ]);
            })
            .close("ReconcTrans")
            .close(Self::NAME)
            .finish()
    }
}
