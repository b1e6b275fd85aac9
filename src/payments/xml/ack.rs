//! Acknowledgements: the one-code answers both sides give to every message.

use super::{split_codes, Element, Writer};

/// An acknowledgement: `<{name}><{code_field}>{code}</{code_field}></{name}>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub name: String,
    pub codes: Vec<String>,
}

impl Ack {
    /// The code element of each ack: reconciliation acks use `ReconcStsCode`.
    fn code_field(name: &str) -> &'static str {
        if name.starts_with("gepgSpReconc") {
            "ReconcStsCode"
        } else {
            "TrxStsCode"
        }
    }

    pub fn to_xml(name: &str, code: &str) -> String {
        Writer::default()
            .open(name)
            .field(Self::code_field(name), code)
            .close(name)
            .finish()
    }

    pub fn parse(el: &Element) -> Ack {
        Ack {
            name: el.name.clone(),
            codes: split_codes(el.text_of(&["TrxStsCode", "ReconcStsCode", "OlStsCode"])),
        }
    }

    pub fn is_success(&self) -> bool {
        self.codes.iter().any(|c| c == "7101")
    }
}
