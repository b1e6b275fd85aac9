//! The GePG XML reader and the signature cutter (src/payments/xml.rs): any body parses or
//! fails without a panic; the cut-out signed element is exactly bytes of the body that parse
//! to the envelope's message element; a DTD or entity declaration is never accepted; every
//! message type that parses re-serialises to XML that parses back to the same message; and
//! a message we sign and wrap comes back out of the cutter byte for byte and verifies.
#![no_main]

use std::sync::OnceLock;

use imis_gateway::payments::sign::{self, SigningKey, VerifyingKey};
use imis_gateway::payments::xml::{
    self, Ack, BillSubReq, BillSubResp, Element, PmtSpInfo, ReconcReq, ReconcResp, XmlError,
};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 * 1024;

fn keys() -> &'static (SigningKey, VerifyingKey) {
    static K: OnceLock<(SigningKey, VerifyingKey)> = OnceLock::new();
    K.get_or_init(|| {
        let (key, _) = sign::generate_identity("fuzz").expect("key");
        let s = SigningKey::from_pkey(key);
        let v = s.verifying_key().expect("public key");
        (s, v)
    })
}

fn reparse(xml: &str) -> Element {
    xml::parse(xml.as_bytes(), usize::MAX)
        .unwrap_or_else(|e| panic!("our own XML does not parse ({e}): {xml}"))
}

/// parse → to_xml → parse gives the same message, and the signed envelope carries it intact.
fn round_trip(el: &Element) {
    let xml = match el.name.as_str() {
        "gepgBillSubReq" => BillSubReq::parse(el).ok().map(|m| {
            let x = m.to_xml();
            assert_eq!(BillSubReq::parse(&reparse(&x)).as_ref(), Ok(&m), "{x}");
            x
        }),
        "gepgBillSubResp" => BillSubResp::parse(el).ok().map(|m| {
            let x = m.to_xml();
            assert_eq!(BillSubResp::parse(&reparse(&x)).as_ref(), Ok(&m), "{x}");
            x
        }),
        "gepgPmtSpInfo" => PmtSpInfo::parse(el).ok().map(|m| {
            let x = m.to_xml();
            assert_eq!(PmtSpInfo::parse(&reparse(&x)).as_ref(), Ok(&m), "{x}");
            x
        }),
        "gepgSpReconcReq" => ReconcReq::parse(el).ok().map(|m| {
            let x = m.to_xml();
            assert_eq!(ReconcReq::parse(&reparse(&x)).as_ref(), Ok(&m), "{x}");
            x
        }),
        "gepgSpReconcResp" => ReconcResp::parse(el).ok().map(|m| {
            let x = m.to_xml();
            assert_eq!(ReconcResp::parse(&reparse(&x)).as_ref(), Ok(&m), "{x}");
            x
        }),
        _ => None,
    };
    let ack = Ack::parse(el);
    let code = ack.codes.join(";");
    if !code.is_empty() && ack.name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let x = Ack::to_xml(&ack.name, &code);
        assert_eq!(Ack::parse(&reparse(&x)).codes, ack.codes, "{x}");
    }
    if let Some(x) = xml {
        let (s, v) = keys();
        let env = s.envelope(&x).expect("sign");
        let cut = xml::split_envelope(&env, usize::MAX).expect("our own envelope");
        assert_eq!(cut.inner, x.as_bytes());
        assert!(
            v.verify(cut.inner, &cut.signature),
            "our own signature fails"
        );
    }
}

/// Whether `data` has `<!DOCTYPE` or `<!ENTITY` as markup of its own: not inside another tag
/// (quick-xml reads `<a <!DOCTYPE/>` as one odd element), and with no comment, CDATA or
/// quoted value anywhere that could hold it as text.
fn declares_a_dtd(data: &[u8]) -> bool {
    let lower = data.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if has(b"<!--") || has(b"<![cdata[") || has(b"\"") || has(b"'") {
        return false;
    }
    let mut in_tag = false;
    for (i, &b) in lower.iter().enumerate() {
        match b {
            b'<' if !in_tag => {
                let rest = &lower[i..];
                if rest.starts_with(b"<!doctype") || rest.starts_with(b"<!entity") {
                    return true;
                }
                in_tag = true;
            }
            b'>' => in_tag = false,
            _ => {}
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let parsed = xml::parse(data, MAX);
    if data.len() > MAX {
        assert!(matches!(parsed, Err(XmlError::TooLarge { .. })));
        return;
    }
    if declares_a_dtd(data) {
        assert!(parsed.is_err(), "a DTD was accepted");
    }
    let Ok(root) = parsed else {
        return;
    };
    if root.name != "Gepg" {
        round_trip(&root);
    }
    if let Ok(cut) = xml::split_envelope(data, MAX) {
        assert_eq!(root.name, "Gepg");
        // `inner` is a slice of the body as received...
        let (base, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
        let at = cut.inner.as_ptr() as usize;
        assert!(at >= base && at + cut.inner.len() <= end);
        // ...that parses on its own to the envelope's message element.
        let inner =
            xml::parse(cut.inner, MAX).unwrap_or_else(|e| panic!("cut inner does not parse: {e}"));
        assert_eq!(inner.name, cut.name);
        let child = root
            .children
            .iter()
            .find(|c| c.name != "gepgSignature")
            .expect("the envelope's message element");
        assert_eq!(&inner, child, "the cut bytes are not the message element");
        round_trip(&inner);
    }
});
