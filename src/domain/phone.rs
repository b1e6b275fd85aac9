//! Phone numbers (MSISDNs) in one canonical form: `255` + 9 digits for Tanzania.
//!
//! Owns: normalising what members, officers, gateways and SMSCs write (`0712…`, `+255712…`,
//! `255712…`, `712…`) and masking a number for logs.
//! Must never: log or display a full number outside of the outbound message itself.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A normalised international number without `+`, e.g. `255712345678`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Msisdn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number {0:?} has characters other than digits, spaces, '-' or a leading '+'")]
    NotDigits(String),
    #[error("phone number {0:?} has the wrong length; use 0712345678 or 255712345678")]
    Length(String),
}

impl Msisdn {
    /// Normalises a Tanzanian or international number. A local number (`0…` with 10 digits,
    /// or 9 digits) gets the `255` country code.
    pub fn parse(raw: &str) -> Result<Msisdn, PhoneError> {
        let trimmed = raw.trim();
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let mut digits = String::with_capacity(body.len());
        for c in body.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(PhoneError::NotDigits(raw.to_string())),
            }
        }
        let digits = if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else if digits.len() == 10 && digits.starts_with('0') {
            format!("255{}", &digits[1..])
        } else if digits.len() == 9 && !digits.starts_with('0') {
            format!("255{digits}")
        } else {
            digits
        };
        if !(10..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneError::Length(raw.to_string()));
        }
        Ok(Msisdn(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form for logs and tracing spans: country code and last three digits only.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        let keep_head = 3.min(n);
        let keep_tail = 3.min(n - keep_head);
        format!(
            "{}{}{}",
            &self.0[..keep_head],
            "*".repeat(n - keep_head - keep_tail),
            &self.0[n - keep_tail..]
        )
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_forms_people_write() {
        for raw in [
            "0712345678",
            "+255712345678",
            "255712345678",
            "712345678",
            "0712 345 678",
            "00255712345678",
        ] {
            assert_eq!(
                Msisdn::parse(raw).map(|m| m.0),
                Ok("255712345678".to_string()),
                "{raw}"
            );
        }
        assert_eq!(
            Msisdn::parse("+254712345678").map(|m| m.0),
            Ok("254712345678".to_string())
        );
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        assert!(matches!(
            Msisdn::parse("07123x5678"),
            Err(PhoneError::NotDigits(_))
        ));
        assert!(matches!(Msisdn::parse("12345"), Err(PhoneError::Length(_))));
        assert!(matches!(Msisdn::parse(""), Err(PhoneError::Length(_))));
        assert!(matches!(
            Msisdn::parse("0123456789012345"),
            Err(PhoneError::Length(_))
        ));
    }

    #[test]
    fn masking_hides_the_subscriber() {
        let m = Msisdn::parse("255712345678").unwrap();
        assert_eq!(m.masked(), "255******678");
        assert!(!m.masked().contains("12345"));
    }
}
