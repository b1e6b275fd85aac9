//! Outbound text → the short_message payloads of one or more submit_sm.
//!
//! Owns: choosing the alphabet (GSM 03.38 unpacked, else UCS2), splitting into segments
//! that fit (160/153 septets, 70/67 UTF-16 units) without cutting an escape pair or a
//! surrogate pair, and the concatenation UDH (IEI 0x00, 8-bit reference).
//! Must never: pick the reference itself (the caller rotates it), or emit a segment over
//! 140 octets of UCS2 / 160 septets.

use super::gsm7;

/// data_coding values this module emits.
pub const DC_GSM7: u8 = 0x00;
pub const DC_UCS2: u8 = 0x08;

const GSM_SINGLE: usize = 160;
const GSM_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// The text split for the wire: `parts` are complete short_message payloads (UDH included
/// when `udhi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub data_coding: u8,
    pub udhi: bool,
    pub parts: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("text needs {0} segments; the concatenation limit is 255")]
    TooLong(usize),
    #[error("empty text")]
    Empty,
}

/// Encodes `text`, with the concatenation reference `reference` if it needs several parts.
pub fn encode(text: &str, reference: u8) -> Result<Encoded, SegmentError> {
    if text.is_empty() {
        return Err(SegmentError::Empty);
    }
    let (data_coding, chunks) = match gsm7::encode(text) {
        Some(septets) => (DC_GSM7, split_gsm(&septets)),
        None => (DC_UCS2, split_ucs2(text)),
    };
    if chunks.len() == 1 {
        return Ok(Encoded {
            data_coding,
            udhi: false,
            parts: chunks,
        });
    }
    let total = u8::try_from(chunks.len()).map_err(|_| SegmentError::TooLong(chunks.len()))?;
    let parts = chunks
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut p = vec![0x05, 0x00, 0x03, reference, total, i as u8 + 1];
            p.extend_from_slice(&body);
            p
        })
        .collect();
    Ok(Encoded {
        data_coding,
        udhi: true,
        parts,
    })
}

fn split_gsm(septets: &[u8]) -> Vec<Vec<u8>> {
    if septets.len() <= GSM_SINGLE {
        return vec![septets.to_vec()];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < septets.len() {
        let mut end = (start + GSM_PART).min(septets.len());
        // An ESC as the last septet of a part would orphan its extension char.
        if end < septets.len() && escape_open(&septets[start..end]) {
            end -= 1;
        }
        out.push(septets[start..end].to_vec());
        start = end;
    }
    out
}

/// Whether `chunk` ends inside an escape pair (an odd run of trailing ESC septets).
fn escape_open(chunk: &[u8]) -> bool {
    chunk.iter().rev().take_while(|&&s| s == 0x1b).count() % 2 == 1
}

fn split_ucs2(text: &str) -> Vec<Vec<u8>> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let to_bytes = |u: &[u16]| u.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    if units.len() <= UCS2_SINGLE {
        return vec![to_bytes(&units)];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < units.len() {
        let mut end = (start + UCS2_PART).min(units.len());
        if end < units.len() && (0xD800..0xDC00).contains(&units[end - 1]) {
            end -= 1;
        }
        out.push(to_bytes(&units[start..end]));
        start = end;
    }
    out
}

/// How many segments `text` will take, and whether it goes as GSM-7.
pub fn segment_count(text: &str) -> (usize, bool) {
    match encode(text, 0) {
        Ok(e) => (e.parts.len(), e.data_coding == DC_GSM7),
        Err(_) => (0, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_gsm_text_is_one_part_without_udh() {
        let e = encode("Habari {jina}", 7).unwrap();
        assert_eq!((e.data_coding, e.udhi, e.parts.len()), (DC_GSM7, false, 1));
        // "Habari " 7 + "jina" 4 + two braces at two septets each (escape + char), unpacked.
        assert_eq!(e.parts[0].len(), 15, "the braces take two septets each");
        let exactly = "a".repeat(160);
        assert_eq!(encode(&exactly, 0).unwrap().parts.len(), 1);
    }

    #[test]
    fn a_long_gsm_text_is_split_at_153_septets_with_a_udh() {
        let text = "x".repeat(400);
        let e = encode(&text, 42).unwrap();
        assert!(e.udhi);
        assert_eq!(e.parts.len(), 3);
        for (i, p) in e.parts.iter().enumerate() {
            assert_eq!(&p[..6], &[5, 0, 3, 42, 3, i as u8 + 1]);
        }
        assert_eq!(e.parts[0].len(), 6 + 153);
        assert_eq!(e.parts[2].len(), 6 + 400 - 306);
    }

    #[test]
    fn an_escape_pair_is_never_cut() {
        // 152 plain chars then '€' (ESC 0x65): the pair would straddle 153.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
        let e = encode(&text, 1).unwrap();
        assert_eq!(e.parts[0].len(), 6 + 152);
        assert_eq!(&e.parts[1][6..8], &[0x1b, 0x65]);
    }

    #[test]
    fn non_gsm_text_falls_back_to_ucs2_and_keeps_surrogate_pairs_whole() {
        let e = encode("Asante ₮", 0).unwrap();
        assert_eq!((e.data_coding, e.parts.len()), (DC_UCS2, 1));
        assert_eq!(e.parts[0].len(), 16);
        // 66 units then an emoji (2 units): the pair would straddle 67.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        let e = encode(&text, 9).unwrap();
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].len(), 6 + 66 * 2);
        let first: Vec<u16> = e.parts[1][6..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(String::from_utf16(&first[..2]).unwrap(), "😀");
    }

    #[test]
    fn empty_and_absurd_texts_are_refused() {
        assert_eq!(encode("", 0), Err(SegmentError::Empty));
        assert!(matches!(
            encode(&"x".repeat(153 * 256), 0),
            Err(SegmentError::TooLong(_))
        ));
        assert_eq!(segment_count(&"y".repeat(161)), (2, true));
    }
}
