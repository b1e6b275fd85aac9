//! Money in Tanzanian shillings, held as whole cents so that sums are exact.
//!
//! Owns: arithmetic and formatting of amounts (`numeric(18,2)` in openIMIS).
//! Must never: use floating point for an amount.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Sub};

/// An amount in cents of TZS. Negative values are balances owed back.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// Whole shillings.
    pub const fn tzs(shillings: i64) -> Money {
        Money(shillings * 100)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// `perc` percent off, rounded to the nearest cent (half away from zero).
    pub fn less_percent(self, perc: u8) -> Money {
        let off = (self.0 * i64::from(perc) * 2 + 100 * self.0.signum()) / 200;
        Money(self.0 - off)
    }

    /// Parses `30000`, `30000.5`, `30,000.00`.
    pub fn parse(s: &str) -> Option<Money> {
        let s: String = s
            .trim()
            .chars()
            .filter(|c| *c != ',' && *c != '_')
            .collect();
        if s.is_empty() {
            return None;
        }
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let frac_cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        let cents = whole.checked_mul(100)?.checked_add(frac_cents)?;
        Some(Money(if neg { -cents } else { cents }))
    }
}

impl fmt::Display for Money {
    /// `30,000` for whole shillings, `30,000.50` otherwise: how amounts read on a phone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / 100;
        let frac = abs % 100;
        let digits = whole.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if frac == 0 {
            write!(f, "{sign}{grouped}")
        } else {
            write!(f, "{sign}{grouped}.{frac:02}")
        }
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl Mul<u32> for Money {
    type Output = Money;
    fn mul(self, rhs: u32) -> Money {
        Money(self.0 * i64::from(rhs))
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_a_receipt() {
        let cases = [
            (Money::tzs(30_000), "30,000"),
            (Money::tzs(0), "0"),
            (Money(1_234_567_850), "12,345,678.50"),
            (Money(-150), "-1.50"),
            (Money::tzs(999), "999"),
        ];
        for (m, want) in cases {
            assert_eq!(m.to_string(), want);
        }
    }

    #[test]
    fn parses_common_forms_and_rejects_junk() {
        assert_eq!(Money::parse("30000"), Some(Money::tzs(30_000)));
        assert_eq!(Money::parse("30,000.5"), Some(Money(3_000_050)));
        assert_eq!(Money::parse("-1.25"), Some(Money(-125)));
        // An empty fraction is how some keyboards leave it: one shilling.
        assert_eq!(Money::parse("1."), Some(Money::tzs(1)));
        for bad in ["", "abc", "1.234", ".5", "1e5", "--1", "1.x"] {
            assert_eq!(Money::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn percent_discount_rounds_half_away_from_zero() {
        assert_eq!(Money::tzs(30_000).less_percent(10), Money::tzs(27_000));
        assert_eq!(Money(333).less_percent(50), Money(166)); // 166.5 off → 167 off
        assert_eq!(Money::tzs(100).less_percent(0), Money::tzs(100));
        assert_eq!(Money::tzs(100).less_percent(100), Money::ZERO);
    }
}
