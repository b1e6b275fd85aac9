//! Inbound (MO) payload bytes → text, and the concatenation header of a part.
//!
//! Owns: decoding by data_coding (GSM-7 unpacked with the escape table, UCS2/UTF-16BE with
//! surrogate pairs, Latin-1, ASCII) and reading the UDH concatenation IEs (0x00 8-bit and
//! 0x08 16-bit reference). Must never: fail on bad bytes (an officer's SMS is decoded as
//! well as it can be, with U+FFFD for what cannot).

use serde::{Deserialize, Serialize};

use super::gsm7;

pub use crate::config::DefaultAlphabet;

/// Decodes `bytes` (without UDH) according to `data_coding`.
pub fn decode(data_coding: u8, bytes: &[u8], default: DefaultAlphabet) -> String {
    match data_coding {
        0x00 => match default {
            DefaultAlphabet::Gsm7 => gsm7::decode(bytes),
            DefaultAlphabet::Latin1 => latin1(bytes),
        },
        0x01 => bytes
            .iter()
            .map(|&b| if b < 0x80 { char::from(b) } else { '\u{FFFD}' })
            .collect(),
        0x08 => ucs2(bytes),
        // Message-class variants: 0xF0..=0xF3 7-bit, 0xF4..=0xF7 8-bit.
        0xF0..=0xF3 => gsm7::decode(bytes),
        _ => latin1(bytes),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn ucs2(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0xFFFD,
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// Where a part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// Splits a payload sent with UDHI into its concatenation info (if any) and its body.
/// A malformed header yields no concat info and the bytes after the declared header.
pub fn split_udh(payload: &[u8]) -> (Option<Concat>, &[u8]) {
    let Some((&udhl, rest)) = payload.split_first() else {
        return (None, payload);
    };
    let udhl = usize::from(udhl);
    if rest.len() < udhl {
        return (None, &[]);
    }
    let (header, body) = rest.split_at(udhl);
    let mut concat = None;
    let mut i = 0;
    while i + 2 <= header.len() {
        let (iei, len) = (header[i], usize::from(header[i + 1]));
        let Some(data) = header.get(i + 2..i + 2 + len) else {
            break;
        };
        match (iei, data) {
            (0x00, [r, t, s]) => {
                concat = Some(Concat {
                    reference: u16::from(*r),
                    total: *t,
                    seq: *s,
                })
            }
            (0x08, [r1, r2, t, s]) => {
                concat = Some(Concat {
                    reference: u16::from_be_bytes([*r1, *r2]),
                    total: *t,
                    seq: *s,
                })
            }
            _ => {}
        }
        i += 2 + len;
    }
    // A part numbered 0 or beyond its total is not a part of anything.
    let concat = concat.filter(|c| c.total > 0 && c.seq >= 1 && c.seq <= c.total);
    (concat, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_data_coding() {
        let d = DefaultAlphabet::Gsm7;
        assert_eq!(decode(0, &[0x48, 0x69, 0x1b, 0x65, 0x00], d), "Hi€@");
        assert_eq!(decode(0, b"caf\xe9", DefaultAlphabet::Latin1), "café");
        assert_eq!(decode(1, b"REG 1\xff", d), "REG 1\u{FFFD}");
        assert_eq!(decode(3, b"Jos\xe9", d), "José");
        // "Ok 😀" in UTF-16BE, the emoji as a surrogate pair.
        let utf16 = [0x00, 0x4f, 0x00, 0x6b, 0x00, 0x20, 0xd8, 0x3d, 0xde, 0x00];
        assert_eq!(decode(8, &utf16, d), "Ok 😀");
        assert_eq!(decode(8, &[0x00, 0x41, 0x00], d), "A\u{FFFD}", "odd length");
        assert_eq!(decode(8, &[0xd8, 0x3d], d), "\u{FFFD}", "lone surrogate");
        assert_eq!(decode(0xF1, &[0x41], d), "A");
    }

    #[test]
    fn reads_8_and_16_bit_concatenation_headers() {
        let (c, body) = split_udh(&[5, 0, 3, 0x2a, 2, 1, b'h', b'i']);
        assert_eq!(
            c,
            Some(Concat {
                reference: 42,
                total: 2,
                seq: 1
            })
        );
        assert_eq!(body, b"hi");
        let (c, body) = split_udh(&[6, 8, 4, 0x01, 0x02, 3, 3, b'x']);
        assert_eq!(
            c,
            Some(Concat {
                reference: 0x0102,
                total: 3,
                seq: 3
            })
        );
        assert_eq!(body, b"x");
    }

    #[test]
    fn malformed_headers_give_no_concat_and_never_panic() {
        assert_eq!(split_udh(&[]), (None, &[][..]));
        assert_eq!(split_udh(&[9, 0, 3]).0, None, "header longer than payload");
        assert_eq!(split_udh(&[5, 0, 3, 1, 2, 3, b'x']).0, None, "seq > total");
        assert_eq!(split_udh(&[5, 0, 3, 1, 0, 0, b'x']).0, None, "total 0");
        assert_eq!(
            split_udh(&[3, 0, 7, 1, b'x']),
            (None, &b"x"[..]),
            "IE overruns"
        );
    }
}
