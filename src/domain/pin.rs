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

/// [`verify`], also returning the Argon2 output computed for `pin` under the stored hash's
/// salt and parameters: what a screen keeps in a stored MO's redelivery key in place of the
/// PIN (`sms::router::Screened::key`). Different PINs give different outputs, the same PIN
/// the same (after a restart too), and reversing it is attacking the stored PIN hash itself,
/// no easier. A malformed stored hash never matches and gives no output.
pub fn verify_output(pin: &str, stored: &str) -> (bool, Vec<u8>) {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return (false, Vec::new());
    };
    let (Some(salt), Some(want), Ok(params)) =
        (parsed.salt, parsed.hash, argon2::Params::try_from(&parsed))
    else {
        return (false, Vec::new());
    };
    let computed = Argon2::default().hash_password_customized(
        pin.as_bytes(),
        Some(parsed.algorithm),
        parsed.version,
        params,
        salt,
    );
    match computed.ok().and_then(|h| h.hash) {
        // `Output`'s equality is constant-time.
        Some(got) => (got == want, got.as_bytes().to_vec()),
        None => (false, Vec::new()),
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

    #[test]
    fn the_output_check_agrees_with_verify_and_tells_pins_apart() {
        let stored = hash("1234", [7u8; 16]).unwrap();
        let (ok, k1) = verify_output("1234", &stored);
        assert!(ok && verify("1234", &stored));
        let (bad, k2) = verify_output("1235", &stored);
        assert!(!bad && !verify("1235", &stored));
        assert_ne!(k1, k2);
        assert_eq!(verify_output("1234", &stored).1, k1);
        assert_eq!(verify_output("1234", "not a hash"), (false, Vec::new()));
    }
}
