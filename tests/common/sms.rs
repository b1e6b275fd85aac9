//! SMS as the SMSC peer (tests/smsc) received them: concatenated parts joined back into
//! whole messages, so tests compare what a phone would show.
#![allow(dead_code)]

use std::collections::HashMap;

use serde_json::Value;

/// The concatenation header of a part (`udh` as the peer lists it: information elements
/// without the UDH length byte): (reference, parts, this part's number). 8-bit (IE 00) and
/// 16-bit (IE 08) references.
fn concat_ie(udh: &str) -> Option<(u16, u8, u8)> {
    let bytes: Vec<u8> = (0..udh.len() / 2)
        .filter_map(|i| u8::from_str_radix(udh.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect();
    match bytes.as_slice() {
        [0x00, 0x03, r, total, seq, ..] => Some((u16::from(*r), *total, *seq)),
        [0x08, 0x04, r1, r2, total, seq, ..] => {
            Some((u16::from_be_bytes([*r1, *r2]), *total, *seq))
        }
        _ => None,
    }
}

/// Every complete message in `submits` (the peer's `/submits`, in arrival order) as
/// (recipient, text), in the order each was completed. Parts are grouped by recipient,
/// reference and part count; a part received twice counts once; a message whose parts did
/// not all arrive is left out.
pub fn messages(submits: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: HashMap<(String, u16, u8), HashMap<u8, String>> = HashMap::new();
    for s in submits {
        let to = s["to"].as_str().unwrap_or_default().to_string();
        let text = s["text"].as_str().unwrap_or_default().to_string();
        let Some((reference, total, seq)) = concat_ie(s["udh"].as_str().unwrap_or_default()) else {
            out.push((to, text));
            continue;
        };
        let key = (to.clone(), reference, total);
        let parts = open.entry(key.clone()).or_default();
        parts.insert(seq, text);
        if (1..=total).all(|n| parts.contains_key(&n)) {
            let whole: String = (1..=total).filter_map(|n| parts.remove(&n)).collect();
            open.remove(&key);
            out.push((to, whole));
        }
    }
    out
}

/// The complete messages received for `to`, in order.
pub fn texts_to(submits: &[Value], to: &str) -> Vec<String> {
    messages(submits)
        .into_iter()
        .filter(|(t, _)| t == to)
        .map(|(_, text)| text)
        .collect()
}

/// The credential header of the harness's test aggregator, for `POST /sms/inbound`.
pub fn inbound_headers() -> (&'static str, &'static str) {
    ("X-Gateway-Secret", super::SMS_SECRET)
}

/// `POST /sms/inbound` on the server at `port` with the test aggregator's credential, over
/// a raw HTTP/1.0 connection; returns (status, body).
pub fn inbound_raw(port: u16, content_type: &str, body: &str) -> (u16, String) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (name, value) = inbound_headers();
    let headers = [("Content-Type", content_type), (name, value)];
    super::http_raw(addr, "POST", "/sms/inbound", &headers, body.as_bytes())
}
