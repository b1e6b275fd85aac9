//! The CHF insurance number (CHFID): 9 digits, the last a check digit equal to the first 8
//! digits read as an integer, mod 7 (openIMIS `Validation.cs`, `uspCreateCHFID`).
//!
//! Owns: parsing, validating and generating CHFIDs.
//! Must never: accept a number whose check digit is wrong, or hand out one already in use.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A valid CHFID. Held as its integer value (leading zeros are significant only in display),
/// which keeps index keys small and fixed-width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Chfid(u32);

/// `999999999` is openIMIS's pseudo-insuree for funding policies; never a member.
pub const FUNDING_CHFID: &str = "999999999";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChfidError {
    #[error("CHFID {0:?} must be 9 digits")]
    Format(String),
    #[error("CHFID {got:?} has a wrong check digit (expected {expected})")]
    CheckDigit { got: String, expected: u8 },
    #[error("CHFID 999999999 is reserved for funding")]
    Reserved,
}

impl Chfid {
    /// Parses and validates a CHFID as a member types it (surrounding spaces are ignored).
    pub fn parse(raw: &str) -> Result<Chfid, ChfidError> {
        let s = raw.trim();
        if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChfidError::Format(raw.to_string()));
        }
        if s == FUNDING_CHFID {
            return Err(ChfidError::Reserved);
        }
        let value: u32 = s.parse().map_err(|_| ChfidError::Format(raw.to_string()))?;
        let base = value / 10;
        let expected = check_digit(base);
        if (value % 10) as u8 != expected {
            return Err(ChfidError::CheckDigit {
                got: s.to_string(),
                expected,
            });
        }
        Ok(Chfid(value))
    }

    /// Builds the CHFID for an 8-digit base (0..=99_999_999) by appending its check digit.
    pub fn from_base(base: u32) -> Option<Chfid> {
        if base > 99_999_999 {
            return None;
        }
        let value = base * 10 + u32::from(check_digit(base));
        (value != 999_999_999).then_some(Chfid(value))
    }

    /// The integer value (for compact keys).
    pub fn value(self) -> u32 {
        self.0
    }

    /// Rebuilds a CHFID from a value previously taken from [`Chfid::value`].
    pub fn from_value(value: u32) -> Option<Chfid> {
        Chfid::from_base(value / 10).filter(|c| c.0 == value)
    }

    /// A random new CHFID for which `taken` says no, as `uspCreateCHFID` draws them
    /// (base in 1..10,000,000). Gives up after `max_tries` collisions.
    pub fn generate<R: Rng>(
        rng: &mut R,
        max_tries: usize,
        mut taken: impl FnMut(Chfid) -> bool,
    ) -> Option<Chfid> {
        for _ in 0..max_tries {
            let base = rng.gen_range(1..10_000_000);
            if let Some(c) = Chfid::from_base(base) {
                if !taken(c) {
                    return Some(c);
                }
            }
        }
        None
    }
}

/// The check digit for an 8-digit base.
pub fn check_digit(base: u32) -> u8 {
    (base % 7) as u8
}

impl fmt::Display for Chfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}

impl std::str::FromStr for Chfid {
    type Err = ChfidError;
    fn from_str(s: &str) -> Result<Chfid, ChfidError> {
        Chfid::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn worked_examples() {
        // 07070707 = 7 × 1,010,101 → remainder 0 → check digit 0.
        let valid = [
            ("070707070", 70_707_070),
            ("100000014", 100_000_014),
            ("100000025", 100_000_025),
            ("000000011", 11),
        ];
        for (s, v) in valid {
            let c = Chfid::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(c.value(), v);
            assert_eq!(c.to_string(), s, "display keeps leading zeros");
        }
    }

    #[test]
    fn rejects_bad_numbers_naming_the_problem() {
        assert_eq!(
            Chfid::parse("070707071"),
            Err(ChfidError::CheckDigit {
                got: "070707071".into(),
                expected: 0
            })
        );
        // 10000001 % 7 = 10000001 - 7*1428571 = 4
        assert_eq!(
            Chfid::parse("100000010"),
            Err(ChfidError::CheckDigit {
                got: "100000010".into(),
                expected: 4
            })
        );
        for bad in [
            "",
            "12345678",
            "1234567890",
            "07070707a",
            "0707 07070",
            "+70707070",
        ] {
            assert!(
                matches!(Chfid::parse(bad), Err(ChfidError::Format(_))),
                "{bad:?}"
            );
        }
        assert_eq!(Chfid::parse("999999999"), Err(ChfidError::Reserved));
        assert_eq!(
            Chfid::parse(" 070707070 ").map(|c| c.value()),
            Ok(70_707_070)
        );
    }

    #[test]
    fn check_digit_is_never_7_8_or_9() {
        for base in (0..99_999_999).step_by(99_991) {
            let c = Chfid::from_base(base).unwrap();
            assert!(c.value() % 10 < 7);
            assert_eq!(Chfid::parse(&c.to_string()), Ok(c));
            assert_eq!(Chfid::from_value(c.value()), Some(c));
        }
        assert_eq!(Chfid::from_value(70_707_071), None);
        assert_eq!(Chfid::from_base(100_000_000), None);
    }

    #[test]
    fn generator_never_returns_a_taken_number() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut taken = HashSet::new();
        for _ in 0..10_000 {
            let c = Chfid::generate(&mut rng, 100, |c| taken.contains(&c)).unwrap();
            assert!(Chfid::parse(&c.to_string()).is_ok());
            assert!(taken.insert(c), "{c} handed out twice");
        }
        // When everything is taken, it says so instead of looping forever.
        assert_eq!(Chfid::generate(&mut rng, 50, |_| true), None);
    }
}
