//! Record encoding: `[VERSION, postcard bytes…]`.
//!
//! The leading byte lets a record's shape evolve: a later build bumps [`VERSION`] and teaches
//! [`decode`] to read the old layout too. This build reads only version 1 and refuses anything
//! else with an error that names the version, rather than misreading the bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The record layout version this build writes.
pub const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value: no version byte")]
    Empty,
    #[error("record layout version {found} is unknown to this build (it reads version {supported}); was the store written by a newer gateway?")]
    UnknownVersion { found: u8, supported: u8 },
    #[error("malformed record: {0}")]
    Postcard(#[from] postcard::Error),
    #[error("record has {0} unexpected trailing bytes")]
    Trailing(usize),
}

/// Encodes a value as `[VERSION, postcard bytes…]`.
///
/// Fails only for types postcard cannot express (sequences of unknown length, or a
/// `Serialize` impl that errors); none of the store's record types do.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    Ok(postcard::to_extend(value, out)?)
}

/// Decodes a value written by [`encode`], rejecting unknown versions and trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != VERSION {
        return Err(CodecError::UnknownVersion {
            found: version,
            supported: VERSION,
        });
    }
    let (value, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing(rest.len()));
    }
    Ok(value)
}

/// [`encode`] for a module's state in the aux tree, failing as a store error naming it.
pub fn encode_aux<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, super::StoreError> {
    encode(value).map_err(|source| super::StoreError::Codec {
        tree: "aux",
        source,
    })
}

/// [`decode`] for a module's state in the aux tree, failing as a store error naming it.
pub fn decode_aux<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, super::StoreError> {
    decode(bytes).map_err(|source| super::StoreError::Codec {
        tree: "aux",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Chfid, Gender, Insuree, Msisdn};
    use chrono::NaiveDate;
    use uuid::Uuid;

    fn insuree() -> Insuree {
        Insuree {
            id: 42,
            uuid: Uuid::from_u128(0x1234),
            chfid: Chfid::parse("070707070").unwrap(),
            family: 7,
            is_head: true,
            last_name: "Mrisho".into(),
            other_names: "Asha".into(),
            dob: NaiveDate::from_ymd_opt(1980, 2, 29).unwrap(),
            gender: Gender::Female,
            relationship: None,
            phone: Some(Msisdn::parse("0712345678").unwrap()),
            card_issued: false,
        }
    }

    #[test]
    fn round_trips_with_a_leading_version_byte() {
        let v = insuree();
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], VERSION);
        assert!(bytes.len() < 100, "compact: {} bytes", bytes.len());
        assert_eq!(decode::<Insuree>(&bytes).unwrap(), v);
    }

    #[test]
    fn a_central_chfid_round_trips_exactly_in_records() {
        // 8 digits, a wrong mod-7 digit, the widest: central numbers kept as they are.
        let wide = "7".repeat(crate::domain::chfid::MAX_LEN);
        for text in ["07070707", "070707071", "ABC-12", wide.as_str()] {
            let mut v = insuree();
            v.chfid = Chfid::from_central(text).unwrap();
            let back = decode::<Insuree>(&encode(&v).unwrap()).unwrap();
            assert_eq!(back, v);
            assert_eq!(back.chfid.to_string(), text);
            let payment = crate::domain::PaymentDetail {
                product_code: "CHF01".into(),
                chfid: v.chfid,
                stage: crate::domain::PolicyStage::New,
                policy: None,
                expected_amount: crate::domain::Money::tzs(30_000),
                amount: None,
                premium: None,
            };
            let back = decode::<crate::domain::PaymentDetail>(&encode(&payment).unwrap());
            assert_eq!(back.unwrap().chfid.as_str(), text);
        }
    }

    #[test]
    fn rejects_unknown_versions_by_name() {
        let mut bytes = encode(&insuree()).unwrap();
        bytes[0] = 2;
        let err = decode::<Insuree>(&bytes).unwrap_err();
        assert!(matches!(
            err,
            CodecError::UnknownVersion {
                found: 2,
                supported: 1
            }
        ));
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn rejects_empty_truncated_and_padded_values() {
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
        let bytes = encode(&insuree()).unwrap();
        assert!(matches!(
            decode::<Insuree>(&bytes[..bytes.len() - 3]),
            Err(CodecError::Postcard(_))
        ));
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(
            decode::<Insuree>(&padded),
            Err(CodecError::Trailing(1))
        ));
    }
}
