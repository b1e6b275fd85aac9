//! The GSM 03.38 default alphabet and its extension table, as unpacked septets (one per
//! octet, as SMPP carries them with data_coding 0).
//!
//! Owns: the one copy of the 03.38 tables in the crate, char ⇄ septet mapping, the escape
//! (0x1B) table, and septet counting (SMS segment sizes here, USSD screen lengths in
//! `ussd::gsm`). Must never: substitute a character silently when encoding (callers fall back to
//! UCS2 instead); decoding an unknown septet yields U+FFFD, never a panic.

/// The basic table, indexed by septet.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

const ESC: u8 = 0x1b;

/// The extension table: (septet after ESC, char).
const EXTENSION: [(u8, char); 10] = [
    (0x0a, '\u{0c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2f, '\\'),
    (0x3c, '['),
    (0x3d, '~'),
    (0x3e, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septets of `c`: one from the basic table, or ESC + one from the extension.
pub fn septets_of(c: char) -> Option<&'static [u8]> {
    // Statics so the result can be borrowed without allocating per char.
    static SINGLE: [u8; 128] = {
        let mut t = [0u8; 128];
        let mut i = 0;
        while i < 128 {
            t[i] = i as u8;
            i += 1;
        }
        t
    };
    static ESCAPED: [[u8; 2]; 10] = {
        let mut t = [[0u8; 2]; 10];
        let mut i = 0;
        while i < 10 {
            t[i] = [ESC, EXTENSION[i].0];
            i += 1;
        }
        t
    };
    if c == '\u{1b}' {
        return None;
    }
    if let Some(i) = BASIC.iter().position(|&b| b == c) {
        return Some(&SINGLE[i..=i]);
    }
    EXTENSION
        .iter()
        .position(|&(_, e)| e == c)
        .map(|i| &ESCAPED[i][..])
}

/// Septets of each ASCII character (0 = not in either table), built from the tables above
/// so that measuring a screen or a segment costs one lookup per character, not a table scan.
const ASCII_SEPTETS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < BASIC.len() {
        let c = BASIC[i] as u32;
        if c < 128 && c != ESC as u32 {
            t[c as usize] = 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < EXTENSION.len() {
        let c = EXTENSION[i].1 as u32;
        if c < 128 {
            t[c as usize] = 2;
        }
        i += 1;
    }
    t
};

/// Septets `c` costs in GSM 7-bit (two for the extension table, ESC + the character), or
/// `None` if it is in neither table.
pub fn septet_cost(c: char) -> Option<usize> {
    if c.is_ascii() {
        return match ASCII_SEPTETS[c as usize] {
            0 => None,
            n => Some(usize::from(n)),
        };
    }
    if BASIC.contains(&c) {
        Some(1)
    } else if EXTENSION.iter().any(|&(_, e)| e == c) {
        Some(2)
    } else {
        None
    }
}

/// Whether every char of `text` has a GSM 03.38 encoding.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| septet_cost(c).is_some())
}

/// Septets `text` needs (extension chars count two); `None` if it is not GSM-7.
pub fn septet_len(text: &str) -> Option<usize> {
    text.chars().map(septet_cost).sum()
}

/// Encodes as unpacked septets; `None` if a char has no GSM 03.38 encoding.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        out.extend_from_slice(septets_of(c)?);
    }
    Some(out)
}

/// Decodes unpacked septets. An unknown escape decodes as its basic-table char (the
/// 03.38 rule for receivers), a lone trailing ESC as a space.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter().copied();
    while let Some(s) = it.next() {
        let s = s & 0x7f;
        if s == ESC {
            match it.next() {
                Some(e) => {
                    let e = e & 0x7f;
                    match EXTENSION.iter().find(|&&(k, _)| k == e) {
                        Some(&(_, c)) => out.push(c),
                        None => out.push(BASIC[usize::from(e)]),
                    }
                }
                None => out.push(' '),
            }
        } else {
            out.push(BASIC[usize::from(s)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_basic_and_extension_tables() {
        let text = "Habari @£$¥ èé Δ_ΦΓ ÄÖÑÜ§ ¿äöñüà 0-9 {}[]~\\|^€";
        let enc = encode(text).unwrap();
        assert_eq!(decode(&enc), text);
        assert_eq!(encode("@").unwrap(), vec![0x00]);
        assert_eq!(encode("€").unwrap(), vec![0x1b, 0x65]);
        assert_eq!(septet_len("a€"), Some(3));
    }

    #[test]
    fn characters_outside_the_alphabet_are_refused_not_replaced() {
        assert!(!is_gsm7("Shilingi ₮"));
        assert_eq!(encode("Habari 😀"), None);
        assert_eq!(
            septet_len("ç"),
            None,
            "lower-case c-cedilla is not in 03.38"
        );
        assert!(is_gsm7("Ç"));
    }

    #[test]
    fn the_ascii_table_agrees_with_the_gsm_tables() {
        for b in 0u8..128 {
            let c = char::from(b);
            assert_eq!(septet_cost(c), septets_of(c).map(<[u8]>::len), "{b:#x}");
        }
        // Not GSM: backquote, DEL, and ESC itself (it only introduces the extension).
        assert_eq!(septet_cost('`'), None);
        assert_eq!(septet_cost('\u{7f}'), None);
        assert_eq!(septet_cost('\u{1b}'), None);
        assert_eq!(septet_cost('è'), Some(1));
        assert_eq!(septet_cost('€'), Some(2));
        assert_eq!(septet_cost('ç'), None);
    }

    #[test]
    fn decoding_is_total() {
        // Unknown escape → the basic char; trailing ESC → space; high bit ignored.
        assert_eq!(decode(&[0x1b, 0x41]), "A");
        assert_eq!(decode(&[0x41, 0x1b]), "A ");
        assert_eq!(decode(&[0xc1]), "A");
    }
}
