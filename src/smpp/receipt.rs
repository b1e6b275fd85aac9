//! Delivery receipts: which message, and what happened to it.
//!
//! Owns: reading a receipt from the TLVs (receipted_message_id, message_state) first and
//! the SMPP 3.4 Appendix B text (`id:… stat:… err:…`) as fallback, and normalising message
//! ids so that the submit_sm_resp id and the receipt id of one message meet (SMSCs mix hex
//! and decimal, like Kannel's msg-id-type).
//! Must never: guess a state it cannot read (an unreadable receipt is `None`).

use crate::sms::status::ReceiptState;

use super::pdu::DeliverMsg;

pub use crate::config::IdFormat;

/// The canonical id: case and leading zeros do not matter; numbers are compared as numbers
/// when the format says the two sides differ.
fn canonical(raw: &str, radix: Option<u32>) -> String {
    let t = raw.trim();
    if let Some(radix) = radix {
        if let Ok(n) = u128::from_str_radix(t, radix) {
            return n.to_string();
        }
    }
    let lower = t.to_ascii_lowercase();
    let stripped = lower.trim_start_matches('0');
    if stripped.is_empty() && !lower.is_empty() {
        "0".to_string()
    } else {
        stripped.to_string()
    }
}

impl IdFormat {
    /// The key for an id from a submit_sm_resp.
    pub fn submit_key(self, raw: &str) -> String {
        match self {
            IdFormat::Same => canonical(raw, None),
            IdFormat::HexThenDecimal => canonical(raw, Some(16)),
            IdFormat::DecimalThenHex => canonical(raw, Some(10)),
        }
    }

    /// The key for an id from a receipt.
    pub fn receipt_key(self, raw: &str) -> String {
        match self {
            IdFormat::Same => canonical(raw, None),
            IdFormat::HexThenDecimal => canonical(raw, Some(10)),
            IdFormat::DecimalThenHex => canonical(raw, Some(16)),
        }
    }
}

/// A receipt as read from a deliver_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub state: ReceiptState,
    /// The `stat:` word or the message_state number, for logs.
    pub stat: String,
    pub err: Option<String>,
}

/// message_state TLV values (SMPP 3.4 §5.3.2.35).
fn from_message_state(v: u8) -> ReceiptState {
    match v {
        2 => ReceiptState::Delivered,
        3 => ReceiptState::Expired,
        4 | 5 | 7 | 8 => ReceiptState::Failed,
        _ => ReceiptState::Pending,
    }
}

fn from_stat(stat: &str) -> Option<ReceiptState> {
    Some(match stat.to_ascii_uppercase().as_str() {
        "DELIVRD" | "DELIVERED" => ReceiptState::Delivered,
        "EXPIRED" => ReceiptState::Expired,
        "UNDELIV" | "UNDELIVERABLE" | "REJECTD" | "REJECTED" | "DELETED" | "UNKNOWN" => {
            ReceiptState::Failed
        }
        "ENROUTE" | "ACCEPTD" | "ACCEPTED" | "SCHEDLD" => ReceiptState::Pending,
        _ => return None,
    })
}

/// The value of `key:` in receipt text (values end at a space, except `text:`).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let pat = format!("{key}:");
    let mut from = 0;
    while let Some(i) = lower[from..].find(&pat) {
        let at = from + i;
        // "submit date:" must not match "date:"; require a word boundary.
        if at == 0 || lower.as_bytes()[at - 1] == b' ' {
            let rest = &text[at + pat.len()..];
            return Some(rest.split(' ').next().unwrap_or(""));
        }
        from = at + pat.len();
    }
    None
}

/// Reads a receipt: TLVs first, text fields for what they lack.
pub fn parse(msg: &DeliverMsg) -> Option<Receipt> {
    let text = String::from_utf8_lossy(&msg.payload);
    let text_id = field(&text, "id").filter(|s| !s.is_empty());
    let text_stat = field(&text, "stat");
    let id = msg
        .receipted_message_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(text_id)?
        .to_string();
    let (state, stat) = match (msg.message_state, text_stat) {
        (Some(v), _) => (from_message_state(v), v.to_string()),
        (None, Some(s)) => (from_stat(s)?, s.to_string()),
        (None, None) => return None,
    };
    Some(Receipt {
        id,
        state,
        stat,
        err: field(&text, "err").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str, id: Option<&str>, state: Option<u8>) -> DeliverMsg {
        DeliverMsg {
            esm_class: 0x04,
            payload: text.as_bytes().to_vec(),
            receipted_message_id: id.map(String::from),
            message_state: state,
            ..DeliverMsg::default()
        }
    }

    const TEXT: &str = "id:0000012 sub:001 dlvrd:001 submit date:2611290957 done date:2611290957 stat:UNDELIV err:034 text:Habari";

    #[test]
    fn tlvs_win_over_the_text() {
        let r = parse(&msg(TEXT, Some("1A"), Some(2))).unwrap();
        assert_eq!((r.id.as_str(), r.state), ("1A", ReceiptState::Delivered));
        assert_eq!(r.err.as_deref(), Some("034"));
    }

    #[test]
    fn the_text_is_read_when_tlvs_are_missing() {
        let r = parse(&msg(TEXT, None, None)).unwrap();
        assert_eq!((r.id.as_str(), r.state), ("0000012", ReceiptState::Failed));
        let exp = parse(&msg("id:9 stat:EXPIRED", None, None)).unwrap();
        assert_eq!(exp.state, ReceiptState::Expired);
        let pend = parse(&msg("id:9 stat:ENROUTE", None, Some(1))).unwrap();
        assert_eq!(pend.state, ReceiptState::Pending);
    }

    #[test]
    fn unreadable_receipts_are_none() {
        assert_eq!(parse(&msg("hello", None, None)), None);
        assert_eq!(parse(&msg("id:5 stat:WHATEVER", None, None)), None);
        assert_eq!(parse(&msg("stat:DELIVRD", None, None)), None, "no id");
    }

    #[test]
    fn ids_meet_across_hex_and_decimal() {
        let f = IdFormat::HexThenDecimal;
        assert_eq!(f.submit_key("1A"), f.receipt_key("26"));
        assert_eq!(f.submit_key("0x1A".trim_start_matches("0x")), "26");
        let g = IdFormat::DecimalThenHex;
        assert_eq!(g.submit_key("255"), g.receipt_key("ff"));
        let s = IdFormat::Same;
        assert_eq!(s.submit_key("00AbC"), s.receipt_key("abc"));
        assert_eq!(s.submit_key("000"), "0");
        // Not a number in the declared radix: compared as text.
        assert_eq!(f.receipt_key("msg-7"), "msg-7");
    }
}
