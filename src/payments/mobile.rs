//! The direct mobile-money callback (for operators who integrate without GePG): JSON signed
//! with HMAC-SHA256 under a shared secret, into the same payment path as GePG's.
//!
//! Owns: the callback's JSON shape, checking its `X-Signature` header (hex HMAC-SHA256 of the
//! raw body, optionally `sha256=`-prefixed) in constant time, and turning it into a
//! [`PaymentNotice`] (dedupe key: provider + transaction id).
//! Must never: accept a body whose signature does not verify, or an empty secret.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use serde::Deserialize;

use super::notify::{PaymentNotice, Source};
use super::xml::parse_amount;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    #[error("the X-Signature header is missing or does not match the body")]
    Signature,
    #[error("invalid callback: {0}")]
    Invalid(String),
}

/// `POST /payments/mobile-money` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileMoneyCallback {
    /// Provider name (`MPESA`, `TIGOPESA`...): with `transaction_id`, the dedupe key.
    pub provider: String,
    pub transaction_id: String,
    pub control_number: String,
    /// Decimal string or number, in TZS.
    pub amount: serde_json::Value,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub paid_at: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub receipt: Option<String>,
}

/// Hex HMAC-SHA256 of `body` under `secret`.
pub fn hmac_hex(secret: &[u8], body: &[u8]) -> Result<String, MobileError> {
    let key = PKey::hmac(secret).map_err(|_| MobileError::Signature)?;
    let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &key)
        .map_err(|_| MobileError::Signature)?;
    let mac = s
        .sign_oneshot_to_vec(body)
        .map_err(|_| MobileError::Signature)?;
    Ok(mac.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks the header against the body, then parses the body.
pub fn verify_and_parse(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<PaymentNotice, MobileError> {
    if secret.is_empty() {
        return Err(MobileError::Signature);
    }
    let given = header
        .map(|h| h.trim().trim_start_matches("sha256=").to_ascii_lowercase())
        .ok_or(MobileError::Signature)?;
    let want = hmac_hex(secret.as_bytes(), body)?;
    if given.len() != want.len() || !openssl::memcmp::eq(given.as_bytes(), want.as_bytes()) {
        return Err(MobileError::Signature);
    }
    let cb: MobileMoneyCallback =
        serde_json::from_slice(body).map_err(|e| MobileError::Invalid(e.to_string()))?;
    let amount_text = match &cb.amount {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(MobileError::Invalid(format!("amount {other}"))),
    };
    let paid = parse_amount(&amount_text)
        .filter(|m| m.is_positive())
        .ok_or_else(|| MobileError::Invalid(format!("amount {amount_text:?}")))?;
    for (name, v) in [
        ("provider", &cb.provider),
        ("transaction_id", &cb.transaction_id),
        ("control_number", &cb.control_number),
    ] {
        if v.trim().is_empty() || v.len() > 100 {
            return Err(MobileError::Invalid(format!("{name} is empty or too long")));
        }
    }
    Ok(PaymentNotice {
        source: Source::MobileMoney,
        sp_code: format!("MM-{}", cb.provider.trim().to_ascii_uppercase()),
        trx_id: cb.transaction_id.trim().to_string(),
        pay_ref_id: String::new(),
        bill_id: String::new(),
        control_number: cb.control_number.trim().to_string(),
        paid,
        currency: cb.currency.unwrap_or_default(),
        paid_at: cb.paid_at.unwrap_or_default(),
        channel: "MOBILE".into(),
        psp_name: cb.provider.clone(),
        payer_phone: cb.phone.unwrap_or_default(),
        receipt: cb
            .receipt
            .unwrap_or_else(|| cb.transaction_id.trim().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;

    #[test]
    fn only_a_body_signed_with_the_secret_is_accepted() {
        let body = br#"{"provider":"mpesa","transaction_id":"RKL51ZDR4F","control_number":"991110000025","amount":"30000","phone":"255754100001"}"#;
        let sig = hmac_hex(b"s3cret", body).unwrap();
        assert_eq!(sig.len(), 64);
        let n = verify_and_parse("s3cret", Some(&sig), body).unwrap();
        assert_eq!(
            (n.sp_code.as_str(), n.trx_id.as_str()),
            ("MM-MPESA", "RKL51ZDR4F")
        );
        assert_eq!(n.paid, Money::tzs(30_000));
        let prefixed = format!("sha256={}", sig.to_uppercase());
        assert!(verify_and_parse("s3cret", Some(&prefixed), body).is_ok());
        assert_eq!(
            verify_and_parse("other", Some(&sig), body),
            Err(MobileError::Signature)
        );
        assert_eq!(
            verify_and_parse("s3cret", None, body),
            Err(MobileError::Signature)
        );
        assert_eq!(
            verify_and_parse("", Some(&sig), body),
            Err(MobileError::Signature)
        );
        let mut tampered = body.to_vec();
        tampered[60] ^= 1;
        assert_eq!(
            verify_and_parse("s3cret", Some(&sig), &tampered),
            Err(MobileError::Signature)
        );
        let bad =
            br#"{"provider":"mpesa","transaction_id":"X","control_number":"1","amount":"-5"}"#;
        let sig = hmac_hex(b"s3cret", bad).unwrap();
        assert!(matches!(
            verify_and_parse("s3cret", Some(&sig), bad),
            Err(MobileError::Invalid(_))
        ));
    }
}
