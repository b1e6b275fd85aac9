//! The insurance number (CHFID) and the rule a number a person types must pass.
//!
//! A CHFID is central data: openIMIS stores it as text (`tblInsuree.CHFID`, 12 characters in
//! the PostgreSQL dump, 50 in MSSQL and Django), and the number a deployment holds need not
//! pass today's check (the generic demo database has 8-digit ones, and most fail mod 7; a
//! deployment may have changed the setting over its life). So a [`Chfid`] holds the text as
//! stored, and the check lives apart in [`ChfidRule`]: openIMIS Tanzania's CHF rule by default
//! (9 digits, the last the first 8 read as an integer mod 7: `Validation.cs`,
//! `uspCreateCHFID`), Luhn or no check digit by configuration (`[domain]`).
//!
//! Owns: the CHFID value (text, at most [`MAX_LEN`] ASCII characters, shown exactly as
//! stored), the typed-number rule with its check digits, and generating new numbers under it.
//! Must never: refuse a central number for failing the rule (only typed numbers are checked),
//! re-pad or reformat a stored number, or hand out a new number already in use.

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The widest CHFID any openIMIS schema holds (`tblInsuree.CHFID nvarchar(50)`).
pub const MAX_LEN: usize = 50;

/// `999999999` is openIMIS's pseudo-insuree for funding policies; never a member.
pub const FUNDING_CHFID: &str = "999999999";

/// An insurance number as the central database holds it. `Copy`, with the text inline, so
/// it passes around like the number it is.
#[derive(Clone, Copy)]
pub struct Chfid {
    len: u8,
    buf: [u8; MAX_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChfidError {
    #[error("CHFID is empty")]
    Empty,
    #[error("CHFID is {len} characters long; at most {MAX_LEN} fit")]
    TooLong { len: usize },
    #[error("CHFID {0:?} has a space, a control or a non-ASCII character")]
    Char(String),
    #[error("CHFID {got:?} must be {length} digits")]
    Format { got: String, length: usize },
    #[error("CHFID {got:?} has a wrong check digit (expected {expected})")]
    CheckDigit { got: String, expected: u8 },
    #[error("CHFID 999999999 is reserved for funding")]
    Reserved,
}

impl Chfid {
    /// A number the central database holds, taken as it is: surrounding whitespace aside
    /// (padding, never part of a key), only what cannot be a key is refused (empty, wider
    /// than [`MAX_LEN`], or with a space, control or non-ASCII character inside).
    pub fn from_central(raw: &str) -> Result<Chfid, ChfidError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ChfidError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(ChfidError::TooLong { len: s.len() });
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ChfidError::Char(s.to_string()));
        }
        let mut buf = [0u8; MAX_LEN];
        buf[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Chfid {
            // s.len() <= MAX_LEN = 50 was checked above.
            len: s.len() as u8,
            buf,
        })
    }

    /// A typed number under openIMIS Tanzania's CHF rule ([`ChfidRule::default`]); callers
    /// with a configured rule use [`ChfidRule::parse`].
    pub fn parse(raw: &str) -> Result<Chfid, ChfidError> {
        ChfidRule::default().parse(raw)
    }

    /// The Tanzania CHF number for an 8-digit base (0..=99_999_999): the base zero-padded
    /// and its mod-7 check digit appended (`uspCreateCHFID`).
    pub fn from_base(base: u32) -> Option<Chfid> {
        if base > 99_999_999 {
            return None;
        }
        let base = format!("{base:08}");
        let digit = mod7_digit(&base);
        let text = format!("{base}{digit}");
        (text != FUNDING_CHFID)
            .then(|| Chfid::from_central(&text).ok())
            .flatten()
    }

    /// The number exactly as stored.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII text in from_central; the fallback is unreachable.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }

    /// A random new number valid under `rule` for which `taken` says no, drawn as
    /// `uspCreateCHFID` draws them (a base in 1..10,000,000, zero-padded, then the check
    /// digit). Gives up after `max_tries` collisions.
    pub fn generate<R: Rng>(
        rng: &mut R,
        rule: &ChfidRule,
        max_tries: usize,
        mut taken: impl FnMut(Chfid) -> bool,
    ) -> Option<Chfid> {
        let free = rule
            .length
            .checked_sub(usize::from(rule.check.has_digit()))?;
        if free == 0 || rule.length > MAX_LEN {
            return None;
        }
        // 10^min(free, 7): openIMIS's range, or all of a shorter number's.
        let top = 10u64.pow(free.min(7) as u32);
        for _ in 0..max_tries {
            let base = format!("{:0free$}", rng.gen_range(1..top));
            let text = match rule.check_digit(&base) {
                Some(d) => format!("{base}{d}"),
                None => base,
            };
            if text == FUNDING_CHFID {
                continue;
            }
            if let Ok(c) = Chfid::from_central(&text) {
                if !taken(c) {
                    return Some(c);
                }
            }
        }
        None
    }
}

impl PartialEq for Chfid {
    fn eq(&self, other: &Chfid) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Chfid {}
impl std::hash::Hash for Chfid {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}
impl PartialOrd for Chfid {
    fn partial_cmp(&self, other: &Chfid) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Chfid {
    fn cmp(&self, other: &Chfid) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Chfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chfid({:?})", self.as_str())
    }
}

impl fmt::Display for Chfid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Stored as its text; a stored record is central data, so it reads back through
// `from_central` (no rule), exactly as it was written.
impl Serialize for Chfid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Chfid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Chfid, D::Error> {
        let s = String::deserialize(d)?;
        Chfid::from_central(&s).map_err(serde::de::Error::custom)
    }
}

/// How the last digit of a typed number checks the others (`[domain] chfid_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChfidCheck {
    /// The other digits read as an integer, mod 7 (openIMIS CHF, `modulo_root = 7`).
    #[default]
    Mod7,
    /// The Luhn digit (openIMIS `modulo_root = 10`).
    Luhn,
    /// No check digit: any digits of the length.
    None,
}

impl ChfidCheck {
    fn has_digit(self) -> bool {
        self != ChfidCheck::None
    }
}

/// The rule a number a person types must pass: `length` digits, the last a check digit by
/// `check`. Central numbers are never held to it (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChfidRule {
    pub length: usize,
    pub check: ChfidCheck,
}

impl Default for ChfidRule {
    /// openIMIS Tanzania's CHF rule: 9 digits, mod 7.
    fn default() -> Self {
        ChfidRule {
            length: 9,
            check: ChfidCheck::Mod7,
        }
    }
}

impl ChfidRule {
    /// Why this rule cannot be used, if it cannot: a length of 1..=[`MAX_LEN`], with room
    /// for at least one digit before a check digit.
    pub fn problem(&self) -> Option<String> {
        let min = 1 + usize::from(self.check.has_digit());
        (!(min..=MAX_LEN).contains(&self.length)).then(|| {
            format!(
                "chfid_length must be {min} to {MAX_LEN} with chfid_check {:?}",
                self.check
            )
        })
    }

    /// A number as a person types it (surrounding spaces ignored), held to this rule.
    pub fn parse(&self, raw: &str) -> Result<Chfid, ChfidError> {
        let s = raw.trim();
        // An empty answer is never a number, whatever length a (mis)built rule asks for.
        if s.is_empty() || s.len() != self.length || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChfidError::Format {
                got: s.to_string(),
                length: self.length,
            });
        }
        if s == FUNDING_CHFID {
            return Err(ChfidError::Reserved);
        }
        let (base, last) = s.split_at(s.len() - 1);
        if let Some(expected) = self.check_digit(base) {
            if last.as_bytes()[0] - b'0' != expected {
                return Err(ChfidError::CheckDigit {
                    got: s.to_string(),
                    expected,
                });
            }
        }
        Chfid::from_central(s)
    }

    /// What this rule would say against `number` (a central one, say), if anything: lets an
    /// import count the numbers a typed check would refuse without refusing them.
    pub fn flags(&self, number: &str) -> Option<ChfidError> {
        self.parse(number).err()
    }

    /// The check digit of the digits `base` under this rule (`None`: no check digit).
    pub fn check_digit(&self, base: &str) -> Option<u8> {
        match self.check {
            ChfidCheck::Mod7 => Some(mod7_digit(base)),
            ChfidCheck::Luhn => Some(luhn_digit(base)),
            ChfidCheck::None => None,
        }
    }
}

/// The digits of `base` read as an integer, mod 7 (non-digits are skipped; callers pass
/// digits). Computed digit by digit, so any length works.
fn mod7_digit(base: &str) -> u8 {
    base.bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u8, |r, b| (r * 10 + (b - b'0')) % 7)
}

/// The Luhn check digit of `base`: from the right, every other digit (the rightmost first)
/// doubled, digit sums added; the check digit brings the total to a multiple of 10.
fn luhn_digit(base: &str) -> u8 {
    let sum: u32 = base
        .bytes()
        .filter(u8::is_ascii_digit)
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    const MOD7: ChfidRule = ChfidRule {
        length: 9,
        check: ChfidCheck::Mod7,
    };

    #[test]
    fn worked_examples_of_the_tanzania_rule() {
        // 07070707 = 7 × 1,010,101 → remainder 0 → check digit 0.
        for s in ["070707070", "100000014", "100000025", "000000011"] {
            let c = MOD7.parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(c.to_string(), s, "display keeps leading zeros");
            assert_eq!(Chfid::parse(s), Ok(c), "the default rule is Tanzania's");
        }
        assert_eq!(ChfidRule::default(), MOD7);
    }

    #[test]
    fn the_rule_rejects_bad_numbers_naming_the_problem() {
        assert_eq!(
            MOD7.parse("070707071"),
            Err(ChfidError::CheckDigit {
                got: "070707071".into(),
                expected: 0
            })
        );
        // 10000001 % 7 = 10000001 - 7*1428571 = 4
        assert_eq!(
            MOD7.parse("100000010"),
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
                matches!(MOD7.parse(bad), Err(ChfidError::Format { length: 9, .. })),
                "{bad:?}"
            );
        }
        assert_eq!(MOD7.parse("999999999"), Err(ChfidError::Reserved));
        assert_eq!(
            MOD7.parse(" 070707070 ").map(|c| c.to_string()),
            Ok("070707070".into())
        );
    }

    #[test]
    fn luhn_worked_example() {
        // The textbook example: 7992739871 → sum 67 → check digit 3.
        let luhn = ChfidRule {
            length: 11,
            check: ChfidCheck::Luhn,
        };
        assert_eq!(luhn.check_digit("7992739871"), Some(3));
        assert!(luhn.parse("79927398713").is_ok());
        assert_eq!(
            luhn.parse("79927398710"),
            Err(ChfidError::CheckDigit {
                got: "79927398710".into(),
                expected: 3
            })
        );
        // 9 digits: 12345678 → 8,6,4,2 doubled from the right are 16,12,8,4, digit sums
        // 7+3+8+4 = 22; plus 7+5+3+1 = 16 → 38 → check digit 2.
        let luhn9 = ChfidRule {
            length: 9,
            check: ChfidCheck::Luhn,
        };
        assert_eq!(luhn9.check_digit("12345678"), Some(2));
        assert!(luhn9.parse("123456782").is_ok());
        assert!(luhn9.parse("123456783").is_err());
        // 100000014 passes mod 7; under Luhn 10000001 → 2 + 1 = 3 → 7 is due.
        assert!(MOD7.parse("100000014").is_ok());
        assert!(matches!(
            luhn9.parse("100000014"),
            Err(ChfidError::CheckDigit { expected: 7, .. })
        ));
    }

    #[test]
    fn no_check_accepts_any_digits_of_the_length() {
        let none = ChfidRule {
            length: 8,
            check: ChfidCheck::None,
        };
        for s in ["12345678", "00000000", "07070707"] {
            assert_eq!(none.parse(s).map(|c| c.to_string()), Ok(s.to_string()));
        }
        for s in ["1234567", "123456789", "1234567a"] {
            assert_eq!(
                none.parse(s),
                Err(ChfidError::Format {
                    got: s.into(),
                    length: 8
                })
            );
        }
    }

    #[test]
    fn flags_names_what_a_typed_check_would_say_of_a_central_number() {
        assert_eq!(MOD7.flags("070707070"), None);
        assert_eq!(
            MOD7.flags("07070707"),
            Some(ChfidError::Format {
                got: "07070707".into(),
                length: 9
            })
        );
        assert!(matches!(
            MOD7.flags("070707071"),
            Some(ChfidError::CheckDigit { expected: 0, .. })
        ));
    }

    #[test]
    fn a_central_number_is_taken_as_it_is() {
        for s in [
            "07070707",
            "070707071",
            "ABC-123/4",
            "1",
            &"9".repeat(MAX_LEN),
        ] {
            let c = Chfid::from_central(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(c.as_str(), s);
            assert_eq!(c.to_string(), s, "never re-padded");
        }
        assert_eq!(
            Chfid::from_central(" 07070707 ").map(|c| c.to_string()),
            Ok("07070707".into())
        );
        assert_eq!(Chfid::from_central(""), Err(ChfidError::Empty));
        assert_eq!(Chfid::from_central("   "), Err(ChfidError::Empty));
        assert_eq!(
            Chfid::from_central(&"1".repeat(MAX_LEN + 1)),
            Err(ChfidError::TooLong { len: MAX_LEN + 1 })
        );
        assert!(matches!(
            Chfid::from_central("0707 0707"),
            Err(ChfidError::Char(_))
        ));
        assert!(matches!(
            Chfid::from_central("0707ü"),
            Err(ChfidError::Char(_))
        ));
        // Equality, order and hashing are the text's: "12" ≠ "012", "12" < "123".
        let c = |s| Chfid::from_central(s).unwrap();
        assert_ne!(c("12"), c("012"));
        assert!(c("12") < c("123"));
    }

    #[test]
    fn serde_keeps_the_text() {
        for s in ["07070707", "070707070", "X1"] {
            let c = Chfid::from_central(s).unwrap();
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("{s:?}"));
            assert_eq!(serde_json::from_str::<Chfid>(&json).unwrap(), c);
        }
        assert!(serde_json::from_str::<Chfid>("\"\"").is_err());
    }

    #[test]
    fn from_base_appends_the_mod7_digit() {
        for base in (0..99_999_999).step_by(99_991) {
            let c = Chfid::from_base(base).unwrap();
            assert_eq!(c.as_str().len(), 9);
            assert!(c.as_str().as_bytes()[8] < b'7');
            assert_eq!(Chfid::parse(c.as_str()), Ok(c));
        }
        assert_eq!(Chfid::from_base(7_070_707).unwrap().as_str(), "070707070");
        assert_eq!(Chfid::from_base(100_000_000), None);
    }

    #[test]
    fn the_generator_never_returns_a_taken_number_and_follows_the_rule() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut taken = HashSet::new();
        for _ in 0..10_000 {
            let c = Chfid::generate(&mut rng, &MOD7, 100, |c| taken.contains(&c)).unwrap();
            assert!(MOD7.parse(c.as_str()).is_ok());
            assert!(taken.insert(c), "{c} handed out twice");
        }
        // When everything is taken, it says so instead of looping forever.
        assert_eq!(Chfid::generate(&mut rng, &MOD7, 50, |_| true), None);
        for rule in [
            ChfidRule {
                length: 11,
                check: ChfidCheck::Luhn,
            },
            ChfidRule {
                length: 4,
                check: ChfidCheck::None,
            },
            ChfidRule {
                length: 2,
                check: ChfidCheck::Mod7,
            },
        ] {
            for _ in 0..200 {
                let c = Chfid::generate(&mut rng, &rule, 100, |_| false).unwrap();
                assert_eq!(rule.flags(c.as_str()), None, "{rule:?} {c}");
            }
        }
        let zero = ChfidRule {
            length: 0,
            check: ChfidCheck::None,
        };
        assert!(zero.problem().is_some());
        assert!(matches!(zero.parse(""), Err(ChfidError::Format { .. })));
        let impossible = ChfidRule {
            length: 1,
            check: ChfidCheck::Mod7,
        };
        assert!(impossible.problem().is_some());
        assert_eq!(Chfid::generate(&mut rng, &impossible, 5, |_| false), None);
        assert_eq!(MOD7.problem(), None);
    }
}
