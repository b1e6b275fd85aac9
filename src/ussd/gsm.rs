//! How long a USSD screen is on the air: GSM 03.38 septets, or UCS2 when it must be.
//!
//! Owns: deciding whether a text can be sent in the GSM 7-bit default alphabet (basic table
//! plus the extension table, whose characters cost two septets) or needs UCS2, and the
//! per-screen limit that follows (182 septets, or 80 UCS2 characters: both are 160 octets).
//! Must never: guess; a character outside both GSM tables always means UCS2. Nor keep a
//! copy of the tables: they are `sms::gsm7`'s.

use crate::sms::gsm7;

/// Septets of one screen in GSM 7-bit: 160 octets × 8 / 7.
pub const GSM7_LIMIT: usize = 182;
/// UCS2 characters of one screen: 160 octets / 2.
pub const UCS2_LIMIT: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn limit(self) -> usize {
        match self {
            Encoding::Gsm7 => GSM7_LIMIT,
            Encoding::Ucs2 => UCS2_LIMIT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS2",
        }
    }
}

/// The encoding `text` needs and its length in that encoding's units.
pub fn measure(text: &str) -> (Encoding, usize) {
    match gsm7::septet_len(text) {
        Some(n) => (Encoding::Gsm7, n),
        None => (Encoding::Ucs2, ucs2_len(text)),
    }
}

/// UTF-16 code units: a character outside the BMP takes two.
pub fn ucs2_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Whether `text` fits one USSD screen in the encoding it needs.
pub fn fits(text: &str) -> bool {
    let (enc, len) = measure(text);
    len <= enc.limit()
}

/// Replaces every character outside the GSM tables with `?`, so that data we do not control
/// (a name typed with a curly apostrophe) never forces a whole screen into UCS2.
pub fn to_gsm(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '`' | '´' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            '\u{2013}' | '\u{2014}' => '-',
            c if gsm7::septet_cost(c).is_some() => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_gsm_and_extension_characters_count_twice() {
        assert_eq!(measure("Karibu CHF"), (Encoding::Gsm7, 10));
        assert_eq!(measure("a€b"), (Encoding::Gsm7, 4));
        assert_eq!(measure("[x]"), (Encoding::Gsm7, 5));
        assert_eq!(measure("èÄ@£\n"), (Encoding::Gsm7, 5));
        assert!(fits(&"x".repeat(182)));
        assert!(!fits(&"x".repeat(183)));
        // 91 extension characters are 182 septets; one more does not fit.
        assert!(fits(&"{".repeat(91)));
        assert!(!fits(&"{".repeat(92)));
    }

    #[test]
    fn one_character_outside_the_tables_switches_to_ucs2() {
        assert_eq!(measure("Habari ç"), (Encoding::Ucs2, 8));
        assert_eq!(measure("ok ✓"), (Encoding::Ucs2, 4));
        // Outside the BMP: a surrogate pair, two units.
        assert_eq!(measure("a😀"), (Encoding::Ucs2, 3));
        assert!(fits(&format!("ç{}", "x".repeat(79))));
        assert!(!fits(&format!("ç{}", "x".repeat(80))));
    }

    #[test]
    fn to_gsm_keeps_gsm_text_and_replaces_the_rest() {
        assert_eq!(to_gsm("N’gwana ç Ä"), "N'gwana ? Ä");
        assert_eq!(measure(&to_gsm("Zoë ✓")).0, Encoding::Gsm7);
    }
}
