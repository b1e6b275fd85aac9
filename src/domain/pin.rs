//! Officer PINs: stored only as a slow-KDF hash (Argon2id, PHC string).
//!
//! Owns: the PIN format rule, hashing and verification.
//! Must never: keep, log or compare a PIN in clear outside `verify`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("PIN must be 4 to 8 digits")]
    Format,
    // password-hash's error is no std Error without its "std" feature: kept typed, shown.
    #[error("PIN hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// A PIN is 4 to 8 digits, what a feature-phone keypad types easily.
pub fn check_format(pin: &str) -> Result<(), PinError> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PinError::Format)
    }
}

/// Hashes a PIN with Argon2id and the given 16 random bytes of salt.
pub fn hash(pin: &str, salt: [u8; 16]) -> Result<String, PinError> {
    check_format(pin)?;
    let salt = SaltString::encode_b64(&salt).map_err(PinError::Hash)?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PinError::Hash)
}

/// True when `pin` matches the stored hash. A malformed stored hash never matches.
pub fn verify(pin: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_pin() {
        let h = hash("1234", [7; 16]).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("1234"));
        assert!(verify("1234", &h));
        assert!(!verify("1235", &h));
        assert!(!verify("", &h));
        assert!(!verify("1234", "not a hash"));
    }

    #[test]
    fn format_is_four_to_eight_digits() {
        for ok in ["1234", "00000000"] {
            assert_eq!(check_format(ok), Ok(()));
        }
        for bad in ["123", "123456789", "12a4", "", "12 34"] {
            assert_eq!(check_format(bad), Err(PinError::Format), "{bad:?}");
        }
        assert_eq!(hash("12", [0; 16]), Err(PinError::Format));
    }
}
