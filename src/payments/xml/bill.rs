//! Bills and their control numbers: `gepgBillSubReq` (we send) and `gepgBillSubResp`
//! (GePG's callback).

use chrono::NaiveDateTime;

use super::{format_amount, format_timestamp, parse_timestamp, split_codes};
use super::{Element, Writer, XmlError};
use crate::domain::Money;

/// One bill of a `gepgBillSubReq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub bill_id: String,
    pub amount: Money,
    pub expires: NaiveDateTime,
    pub generated: NaiveDateTime,
    pub payer_id: String,
    pub payer_name: String,
    pub payer_phone: String,
    pub payer_email: String,
    pub description: String,
    pub item_ref: String,
    pub gfs_code: String,
}

/// `gepgBillSubReq`: bills to get control numbers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillSubReq {
    pub sp_code: String,
    pub sub_sp_code: String,
    pub sp_sys_id: String,
    pub bills: Vec<Bill>,
}

impl BillSubReq {
    pub const NAME: &'static str = "gepgBillSubReq";

    pub fn to_xml(&self) -> String {
        let mut w = Writer::default();
        w.open(Self::NAME)
            .open("BillHdr")
            .field("SpCode", &self.sp_code)
            .field("RtrRespFlg", "true")
            .close("BillHdr");
        w.items("BillTrxInf", &self.bills, |w, b| {
            let amt = format_amount(b.amount);
            w.field("BillId", &b.bill_id)
                .field("SubSpCode", &self.sub_sp_code)
                .field("SpSysId", &self.sp_sys_id)
                .field("BillAmt", &amt)
                .field("MiscAmt", "0")
                .field("BillExprDt", &format_timestamp(b.expires))
                .field("PyrId", &b.payer_id)
                .field("PyrName", &b.payer_name)
                .field("BillDesc", &b.description)
                .field("BillGenDt", &format_timestamp(b.generated))
                .field("BillGenBy", "Imis")
                .field("BillApprBy", "Imis")
                .field("PyrCellNum", &b.payer_phone)
                .field("PyrEmail", &b.payer_email)
                .field("Ccy", "TZS")
                .field("BillEqvAmt", &amt)
                .field("RemFlag", "true")
                .field("BillPayOpt", "3")
                .open("BillItems")
                .open("BillItem")
                .field("BillItemRef", &b.item_ref)
                .field("UseItemRefOnPay", "N")
                .field("BillItemAmt", &amt)
                .field("BillItemEqvAmt", &amt)
                .field("BillItemMiscAmt", "0")
                .field("GfsCode", &b.gfs_code)
                .close("BillItem")
                .close("BillItems");
        });
        w.close(Self::NAME).finish()
    }

    pub fn parse(el: &Element) -> Result<BillSubReq, XmlError> {
        const E: &str = "gepgBillSubReq";
        let hdr = el.child(&["BillHdr"]).ok_or(XmlError::Missing {
            element: E,
            field: "BillHdr",
        })?;
        let bills = el.each(E, "BillTrxInf", |t| {
            let ts = |f: &'static str| {
                let raw = t.text_of(&[f]);
                parse_timestamp(raw).ok_or_else(|| XmlError::Invalid {
                    element: E,
                    field: f,
                    value: raw.to_string(),
                })
            };
            let item = t
                .child(&["BillItems"])
                .and_then(|i| i.child(&["BillItem"]))
                .cloned()
                .unwrap_or_default();
            Ok(Bill {
                bill_id: t.required(E, "BillId", &[])?,
                amount: t.money(E, "BillAmt", true)?,
                expires: ts("BillExprDt")?,
                generated: ts("BillGenDt")?,
                payer_id: t.text_of(&["PyrId"]).into(),
                payer_name: t.text_of(&["PyrName"]).into(),
                payer_phone: t.text_of(&["PyrCellNum"]).into(),
                payer_email: t.text_of(&["PyrEmail"]).into(),
                description: t.text_of(&["BillDesc"]).into(),
                item_ref: item.text_of(&["BillItemRef"]).into(),
                gfs_code: item.text_of(&["GfsCode"]).into(),
            })
        })?;
        // The request carries these per bill; we send one value for all, so the last wins.
        let last = el.all("BillTrxInf").last().cloned().unwrap_or_default();
        Ok(BillSubReq {
            sp_code: hdr.required(E, "SpCode", &[])?,
            sub_sp_code: last.text_of(&["SubSpCode"]).to_string(),
            sp_sys_id: last.text_of(&["SpSysId"]).to_string(),
            bills,
        })
    }
}

/// One line of a `gepgBillSubResp`: the control number GePG gave a bill, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlNumberResult {
    pub bill_id: String,
    /// `None` when GePG refused the bill (`TrxSts` GF).
    pub control_number: Option<String>,
    /// Every code of `TrxStsCode` (`7242;7627` → both).
    pub codes: Vec<String>,
}

/// `gepgBillSubResp`: the control number callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillSubResp {
    pub results: Vec<ControlNumberResult>,
}

impl BillSubResp {
    pub const NAME: &'static str = "gepgBillSubResp";

    pub fn parse(el: &Element) -> Result<BillSubResp, XmlError> {
        const E: &str = "gepgBillSubResp";
        let results = el.each(E, "BillTrxInf", |t| {
            let codes = split_codes(t.text_of(&["TrxStsCode"]));
            let ok = t.text_of(&["TrxSts"]).eq_ignore_ascii_case("GS")
                || (t.text_of(&["TrxSts"]).is_empty() && codes.iter().any(|c| c == "7101"));
            let cn = t.text_of(&["PayCntrNum", "PayCtrNum", "BillCtrNum"]);
            Ok(ControlNumberResult {
                bill_id: t.required(E, "BillId", &[])?,
                control_number: (ok && !cn.is_empty() && cn != "0").then(|| cn.to_string()),
                codes,
            })
        })?;
        Ok(BillSubResp { results })
    }

    pub fn to_xml(&self) -> String {
        Writer::default()
            .open(Self::NAME)
            .items("BillTrxInf", &self.results, |w, r| {
                let status = if r.control_number.is_some() {
                    "GS"
                } else {
                    "GF"
                };
                w.field("BillId", &r.bill_id)
                    .field("PayCntrNum", r.control_number.as_deref().unwrap_or("0"))
                    .field("TrxSts", status)
                    .field("TrxStsCode", &r.codes.join(";"));
            })
            .close(Self::NAME)
            .finish()
    }
}
