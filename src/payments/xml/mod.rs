//! GePG v4 messages as XML: a small, strict reader and the message types we send and receive.
//!
//! Owns: turning raw bytes into a tree of elements (by element name, never by position;
//! `Ccy` and `CCy` alike), cutting the signed inner element out of the `<Gepg>` envelope as
//! the exact bytes that arrived, and writing compact messages (no declaration, no namespace,
//! no whitespace) ready to be signed.
//! Must never: accept a DTD, an entity other than XML's five or a processing instruction
//! (GePG sends none, an attacker would), read a body over the size limit, or re-serialise a
//! received message to verify it (the signature covers the bytes as sent).
//!
//! Layout: [`read`] (the strict reader and the envelope), [`write`] (the compact writer),
//! then one file a message family: [`bill`] (bills and control numbers), [`payment`] (the
//! payment notification), [`reconc`] (reconciliation) and [`ack`] (acknowledgements).

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};

use crate::domain::Money;

mod ack;
mod bill;
mod payment;
mod read;
mod reconc;
mod write;

pub use ack::Ack;
pub use bill::{Bill, BillSubReq, BillSubResp, ControlNumberResult};
pub use payment::{PmtSpInfo, PmtTrx};
pub use read::{parse, split_envelope, Element, Signed};
pub use reconc::{ReconcLine, ReconcReq, ReconcResp};
pub use write::Writer;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("body of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("XML with a DTD, an entity declaration or a processing instruction is refused")]
    Dtd,
    #[error("malformed XML: {0}")]
    Malformed(#[source] Malformed),
    #[error("not a GePG envelope: {0}")]
    Envelope(String),
    #[error("{element}: missing <{field}>")]
    Missing {
        element: &'static str,
        field: &'static str,
    },
    #[error("{element}: <{field}> has an invalid value {value:?}")]
    Invalid {
        element: &'static str,
        field: &'static str,
        value: String,
    },
}

/// Why a body is not well-formed XML (or not the shape of one message).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Malformed {
    /// The reader's own error, shared so that [`XmlError`] stays `Clone`.
    #[error(transparent)]
    Syntax(Arc<quick_xml::Error>),
    #[error(transparent)]
    Utf8(#[from] std::str::Utf8Error),
    #[error("{0}")]
    Structure(&'static str),
}

impl From<quick_xml::Error> for Malformed {
    fn from(e: quick_xml::Error) -> Malformed {
        Malformed::Syntax(Arc::new(e))
    }
}

impl From<&'static str> for Malformed {
    fn from(what: &'static str) -> Malformed {
        Malformed::Structure(what)
    }
}

/// Equal when they say the same: the reader's error has no `PartialEq`, and tests compare
/// whole [`XmlError`]s.
impl PartialEq for Malformed {
    fn eq(&self, other: &Malformed) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Malformed {}

/// `30000`, `30000.00`, `1000.0`, `30000.000`: GePG amounts as exact cents.
pub fn parse_amount(raw: &str) -> Option<Money> {
    let raw = raw.trim();
    let normalised = match raw.split_once('.') {
        Some((w, f)) if f.len() > 2 && f[2..].bytes().all(|b| b == b'0') => {
            format!("{w}.{}", &f[..2])
        }
        _ => raw.to_string(),
    };
    if normalised.contains(',') || normalised.starts_with('-') {
        return None;
    }
    Money::parse(&normalised)
}

/// An amount as GePG writes it: `30000.00`.
pub fn format_amount(m: Money) -> String {
    format!("{}.{:02}", m.cents() / 100, (m.cents() % 100).abs())
}

/// GePG timestamps: `2025-06-15T08:01:44`, `2023-01-03 14:47:14.0`, or a bare date.
pub fn parse_timestamp(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y%m%d%H%M%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, f) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

pub fn format_timestamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The codes of a status field: `7242;7627` → both.
pub fn split_codes(raw: &str) -> Vec<String> {
    raw.split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    fn sample_payment() -> PmtSpInfo {
        PmtSpInfo {
            payments: vec![PmtTrx {
                trx_id: "TRX123456".into(),
                sp_code: "SP108".into(),
                pay_ref_id: "9910222529".into(),
                bill_id: "104523".into(),
                control_number: "991080222529".into(),
                bill_amt: Money::tzs(30_000),
                paid_amt: Money::tzs(30_000),
                pay_opt: "3".into(),
                ccy: "TZS".into(),
                trx_date: "2025-06-15T08:01:44".into(),
                channel: "MOBILE".into(),
                payer_phone: "255754000000".into(),
                payer_name: "Mwajuma & Hassan <M>".into(),
                payer_email: String::new(),
                psp_receipt: "PSPREC123456".into(),
                psp_name: "M-PESA".into(),
                ctr_acc: "0150211612834".into(),
            }],
        }
    }

    #[test]
    fn a_payment_round_trips_with_escaped_text() {
        let p = sample_payment();
        let xml = p.to_xml();
        assert!(xml.contains("Mwajuma &amp; Hassan &lt;M&gt;"), "{xml}");
        let back = PmtSpInfo::parse(&parse(xml.as_bytes(), MAX).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn element_order_and_ccy_spelling_do_not_matter() {
        // openIMIS order (PyrEmail before PyrName), `Ccy` instead of `CCy`, pretty-printed.
        let xml = "<gepgPmtSpInfo>\n  <PymtTrxInf>\n    <PaidAmt>20000</PaidAmt>\n    \
                   <PayCtrNum>991080222529</PayCtrNum>\n    <SpCode>SP108</SpCode>\n    \
                   <TrxId>T-9</TrxId>\n    <PyrEmail/>\n    <PyrName>Asha</PyrName>\n    \
                   <Ccy>TZS</Ccy>\n    <BillAmt>30000.000</BillAmt>\n  </PymtTrxInf>\n</gepgPmtSpInfo>";
        let p = PmtSpInfo::parse(&parse(xml.as_bytes(), MAX).unwrap()).unwrap();
        let t = &p.payments[0];
        assert_eq!(
            (t.trx_id.as_str(), t.ccy.as_str(), t.payer_name.as_str()),
            ("T-9", "TZS", "Asha")
        );
        assert_eq!(
            (t.paid_amt, t.bill_amt),
            (Money::tzs(20_000), Money::tzs(30_000))
        );
    }

    #[test]
    fn missing_or_bad_fields_are_named() {
        let no_trx = "<gepgPmtSpInfo><PymtTrxInf><SpCode>SP1</SpCode><PayCtrNum>1</PayCtrNum>\
                      <PaidAmt>1</PaidAmt></PymtTrxInf></gepgPmtSpInfo>";
        let err = PmtSpInfo::parse(&parse(no_trx.as_bytes(), MAX).unwrap()).unwrap_err();
        assert_eq!(
            err,
            XmlError::Missing {
                element: "PymtTrxInf",
                field: "TrxId"
            }
        );
        let bad_amt = no_trx
            .replace("<SpCode>", "<TrxId>T</TrxId><SpCode>")
            .replace("<PaidAmt>1</PaidAmt>", "<PaidAmt>1e3</PaidAmt>");
        let err = PmtSpInfo::parse(&parse(bad_amt.as_bytes(), MAX).unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                XmlError::Invalid {
                    field: "PaidAmt",
                    ..
                }
            ),
            "{err}"
        );
        let empty = PmtSpInfo::parse(&parse(b"<gepgPmtSpInfo/>", MAX).unwrap()).unwrap_err();
        assert!(matches!(
            empty,
            XmlError::Missing {
                field: "PymtTrxInf",
                ..
            }
        ));
    }

    #[test]
    fn dtds_entities_and_oversize_bodies_are_refused() {
        let dtd = b"<?xml version=\"1.0\"?><!DOCTYPE Gepg [<!ENTITY x \"boom\">]><Gepg>&x;</Gepg>";
        assert_eq!(parse(dtd, MAX), Err(XmlError::Dtd));
        let entity = b"<Gepg><a>&x;</a></Gepg>";
        assert_eq!(parse(entity, MAX), Err(XmlError::Dtd));
        let pi = b"<Gepg><?php echo 1; ?></Gepg>";
        assert_eq!(parse(pi, MAX), Err(XmlError::Dtd));
        // The five XML entities and character references are fine.
        let ok = parse(b"<a>&amp;&lt;&#65;</a>", MAX).unwrap();
        assert_eq!(ok.text, "&<A");
        let big = vec![b' '; 100];
        assert_eq!(
            parse(&big, 10),
            Err(XmlError::TooLarge { len: 100, max: 10 })
        );
        assert!(matches!(
            parse(b"<a><b></a>", MAX),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"<a></a><b/>", MAX),
            Err(XmlError::Malformed(_))
        ));
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(matches!(
            parse(deep.as_bytes(), MAX),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn the_envelope_yields_the_exact_inner_bytes() {
        let inner = "<gepgPmtSpInfo><PymtTrxInf><TrxId>1</TrxId></PymtTrxInf></gepgPmtSpInfo>";
        let raw = format!("<Gepg>\n  {inner}\n  <gepgSignature> c2ln\n</gepgSignature></Gepg>");
        let s = split_envelope(raw.as_bytes(), MAX).unwrap();
        assert_eq!(s.name, "gepgPmtSpInfo");
        assert_eq!(s.inner, inner.as_bytes());
        assert_eq!(s.signature, "c2ln");
        // Signature first works too.
        let raw = format!("<Gepg><gepgSignature>c2ln</gepgSignature>{inner}</Gepg>");
        assert_eq!(
            split_envelope(raw.as_bytes(), MAX).unwrap().inner,
            inner.as_bytes()
        );
        for bad in [
            format!("<Other>{inner}<gepgSignature>x</gepgSignature></Other>"),
            format!("<Gepg>{inner}</Gepg>"),
            "<Gepg><gepgSignature>x</gepgSignature></Gepg>".to_string(),
            format!("<Gepg>{inner}{inner}<gepgSignature>x</gepgSignature></Gepg>"),
        ] {
            assert!(
                matches!(
                    split_envelope(bad.as_bytes(), MAX),
                    Err(XmlError::Envelope(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bills_control_numbers_reconciliation_and_acks_round_trip() {
        let t = NaiveDate::from_ymd_opt(2025, 6, 14)
            .unwrap()
            .and_hms_opt(10, 15, 0)
            .unwrap();
        let req = BillSubReq {
            sp_code: "SP108".into(),
            sub_sp_code: "1001".into(),
            sp_sys_id: "CHFIMIS001".into(),
            bills: vec![Bill {
                bill_id: "104523".into(),
                amount: Money::tzs(30_000),
                expires: t,
                generated: t,
                payer_id: "070707070".into(),
                payer_name: "Juma".into(),
                payer_phone: "255754100001".into(),
                payer_email: String::new(),
                description: "Bill".into(),
                item_ref: "104523".into(),
                gfs_code: "140206".into(),
            }],
        };
        let xml = req.to_xml();
        assert!(xml.contains("<Ccy>TZS</Ccy>") && xml.contains("<BillPayOpt>3</BillPayOpt>"));
        assert_eq!(
            BillSubReq::parse(&parse(xml.as_bytes(), MAX).unwrap()).unwrap(),
            req
        );

        let resp = BillSubResp {
            results: vec![
                ControlNumberResult {
                    bill_id: "1".into(),
                    control_number: Some("991080222529".into()),
                    codes: vec!["7101".into()],
                },
                ControlNumberResult {
                    bill_id: "2".into(),
                    control_number: None,
                    codes: vec!["7242".into(), "7627".into()],
                },
            ],
        };
        let xml = resp.to_xml();
        assert!(xml.contains("<TrxStsCode>7242;7627</TrxStsCode>"));
        assert_eq!(
            BillSubResp::parse(&parse(xml.as_bytes(), MAX).unwrap()).unwrap(),
            resp
        );

        let rq = ReconcReq {
            req_id: "1825734690".into(),
            sp_code: "SP108".into(),
            sp_sys_id: "CHFIMIS001".into(),
            date: t.date(),
            option: 1,
        };
        let xml = rq.to_xml();
        assert!(xml.contains("<TnxDt>2025-06-14</TnxDt>"));
        assert_eq!(
            ReconcReq::parse(&parse(xml.as_bytes(), MAX).unwrap()).unwrap(),
            rq
        );

        let rs = ReconcResp {
            req_id: "1825734690".into(),
            sp_code: "SP108".into(),
            status_codes: vec!["7101".into()],
            lines: vec![ReconcLine {
                bill_id: "104523".into(),
                control_number: "991080222529".into(),
                psp_trx_id: "1672746434856".into(),
                paid_amt: Money::tzs(410_000),
                ccy: "TZS".into(),
                pay_ref_id: "923003000023547".into(),
                trx_date: "2023-01-03 14:47:14.0".into(),
                ctr_acc: "GEPG0123456".into(),
                channel: "Tigo".into(),
                psp_name: "GePG".into(),
                payer_phone: "255689520000".into(),
                payer_name: "Buffy Ortiz".into(),
            }],
        };
        let xml = rs.to_xml();
        assert_eq!(
            ReconcResp::parse(&parse(xml.as_bytes(), MAX).unwrap()).unwrap(),
            rs
        );

        let ack = Ack::to_xml("gepgSpReconcRespAck", "7101");
        assert_eq!(
            ack,
            "<gepgSpReconcRespAck><ReconcStsCode>7101</ReconcStsCode></gepgSpReconcRespAck>"
        );
        let parsed = Ack::parse(
            &parse(
                b"<gepgBillSubReqAck><TrxStsCode>7242;7226</TrxStsCode></gepgBillSubReqAck>",
                MAX,
            )
            .unwrap(),
        );
        assert!(!parsed.is_success());
        assert_eq!(parsed.codes, ["7242", "7226"]);
    }

    #[test]
    fn amounts_and_timestamps_parse_leniently() {
        assert_eq!(parse_amount("410000"), Some(Money::tzs(410_000)));
        assert_eq!(parse_amount("76937.39"), Some(Money(7_693_739)));
        assert_eq!(parse_amount("1000.0"), Some(Money::tzs(1000)));
        assert_eq!(parse_amount("1000.000"), Some(Money::tzs(1000)));
        assert_eq!(parse_amount("1,000"), None);
        assert_eq!(parse_amount("-5"), None);
        assert_eq!(parse_amount("1.005"), None);
        assert_eq!(format_amount(Money(7_693_739)), "76937.39");
        for raw in [
            "2023-01-03 14:47:14.0",
            "2023-01-03T14:47:14",
            "20230103144714",
        ] {
            let t = parse_timestamp(raw).unwrap();
            assert_eq!(format_timestamp(t), "2023-01-03T14:47:14", "{raw}");
        }
        assert!(parse_timestamp("yesterday").is_none());
    }
}
