//! MO text decoding by data_coding and the concatenation UDH (src/sms/mo_text.rs): any bytes
//! decode without a panic to at most one char per octet; a UDH never yields a part numbered
//! outside 1..=total; and what our own segmenter (src/sms/segment.rs) sends decodes back to
//! the same text once its parts are joined, the way MO reassembly joins them.
#![no_main]

use imis_gateway::sms::mo_text::{self, DefaultAlphabet};
use imis_gateway::sms::segment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [dc, flags, rest @ ..] = data else {
        return;
    };
    let alphabet = if flags & 1 == 0 {
        DefaultAlphabet::Gsm7
    } else {
        DefaultAlphabet::Latin1
    };
    let text = mo_text::decode(*dc, rest, alphabet);
    let chars = text.chars().count();
    assert!(
        chars <= rest.len(),
        "{chars} chars from {} octets",
        rest.len()
    );
    if *dc == 0x08 {
        assert!(chars <= rest.len().div_ceil(2));
    }

    let (concat, body) = mo_text::split_udh(rest);
    assert!(rest.ends_with(body), "the body is what follows the header");
    if let Some(c) = concat {
        assert!(c.total > 0 && (1..=c.total).contains(&c.seq), "{c:?}");
    }

    // Round trip through our own MT segmenter.
    let s = String::from_utf8_lossy(rest);
    let Ok(enc) = segment::encode(&s, *flags) else {
        return;
    };
    assert!(!enc.parts.is_empty());
    let total = enc.parts.len();
    let mut joined = Vec::new();
    for (i, p) in enc.parts.iter().enumerate() {
        // Unpacked GSM-7: one octet per septet, 160 at most; UCS2: 140 octets.
        let cap = if enc.data_coding == segment::DC_UCS2 {
            140
        } else {
            160
        };
        assert!(p.len() <= cap, "segment of {} octets", p.len());
        if enc.udhi {
            let (c, b) = mo_text::split_udh(p);
            let c = c.expect("our own UDH reads back");
            assert_eq!(
                (c.reference, usize::from(c.total), usize::from(c.seq)),
                (u16::from(*flags), total, i + 1)
            );
            joined.extend_from_slice(b);
        } else {
            assert_eq!(total, 1);
            joined.extend_from_slice(p);
        }
    }
    let back = mo_text::decode(enc.data_coding, &joined, DefaultAlphabet::Gsm7);
    assert_eq!(back, s, "segment → join → decode is not the identity");
});
