//! The facilities and their staff phones, as an administrator registers them on a stopped
//! store (`imis-gateway facility ...`).
//!
//! Owns: aux namespaces [`NS_HF`] and [`NS_STAFF`], the staff PIN check and its lockout
//! (as officers': [`MAX_FAILURES`] wrong PINs in a row lock the phone for
//! [`LOCKOUT_MINUTES`]). Must never: store a PIN in clear (it is hashed by `domain::pin`,
//! the officers' Argon2 hashing), or verify a PIN while the phone is locked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::FacilityError;
use crate::domain::{pin, Msisdn};
use crate::store::{codec, Store, StoreError, TxError, WriteTx};

pub const NS_HF: &str = "facility.hf";
pub const NS_STAFF: &str = "facility.staff";
/// Wrong PINs in a row before a staff phone is locked (officers' default too).
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT_MINUTES: i64 = 30;

/// A health facility (`tblHF`): what a verification names it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facility {
    /// `HFCode`, at most 8 characters.
    pub code: String,
    /// `HFName`.
    pub name: String,
    /// `HFLevel`: D dispensary, C health centre, H hospital.
    pub level: char,
    /// `HFCareType`: I in-patient, O out-patient, B both.
    pub care_type: char,
}

/// A staff phone of a facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    pub hf: String,
    /// PHC string of the PIN (Argon2id).
    pub pin_hash: String,
    pub failures: u32,
    pub locked_until_ms: Option<i64>,
}

/// An HF code as openIMIS allows it: 1 to 8 ASCII letters or digits (upper-cased).
pub fn normalize_code(code: &str) -> Result<String, FacilityError> {
    let c = code.trim().to_ascii_uppercase();
    if (1..=8).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(c)
    } else {
        Err(FacilityError::Code(code.to_string()))
    }
}

/// Adds or replaces a facility.
pub fn put_facility(store: &Store, f: &Facility) -> Result<(), FacilityError> {
    let code = normalize_code(&f.code)?;
    let f = Facility { code, ..f.clone() };
    store.aux_put(NS_HF, f.code.as_bytes(), &codec::encode_aux(&f)?)?;
    store.flush()?;
    Ok(())
}

pub fn facility(store: &Store, code: &str) -> Result<Option<Facility>, StoreError> {
    store
        .aux_get(NS_HF, code.as_bytes())?
        .map(|raw| codec::decode_aux(&raw))
        .transpose()
}

pub fn facilities(store: &Store) -> Result<Vec<Facility>, StoreError> {
    store
        .aux_scan(NS_HF, b"")?
        .iter()
        .map(|(_, v)| codec::decode_aux(v))
        .collect()
}

/// Registers `phone` as a staff phone of facility `hf` with `new_pin` (hashed), replacing
/// any earlier registration of the phone and lifting its lockout.
pub fn add_staff(
    store: &Store,
    hf: &str,
    phone: &Msisdn,
    new_pin: &str,
) -> Result<Facility, FacilityError> {
    let hf = normalize_code(hf)?;
    let Some(f) = facility(store, &hf)? else {
        return Err(FacilityError::NoFacility(hf));
    };
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    let staff = Staff {
        hf,
        pin_hash: pin::hash(new_pin, salt)?,
        failures: 0,
        locked_until_ms: None,
    };
    store.aux_put(
        NS_STAFF,
        phone.as_str().as_bytes(),
        &codec::encode_aux(&staff)?,
    )?;
    store.flush()?;
    tracing::info!(hf = %f.code, phone = %phone.masked(), "facility staff phone registered");
    Ok(f)
}

/// Removes a staff phone; returns whether it was registered.
pub fn remove_staff(store: &Store, phone: &Msisdn) -> Result<bool, StoreError> {
    let had = store.aux_remove(NS_STAFF, phone.as_str().as_bytes())?;
    store.flush()?;
    Ok(had)
}

/// The staff record of `phone`, if it is a registered staff phone.
pub fn staff_of(store: &Store, phone: &Msisdn) -> Result<Option<Staff>, StoreError> {
    store
        .aux_get(NS_STAFF, phone.as_str().as_bytes())?
        .map(|raw| codec::decode_aux(&raw))
        .transpose()
}

/// The same, inside a transaction (the SMS router's).
pub fn staff_in(tx: &WriteTx<'_>, phone: &Msisdn) -> Result<Option<Staff>, TxError> {
    match tx.aux_get(NS_STAFF, phone.as_str().as_bytes())? {
        Some(raw) => Ok(Some(codec::decode_aux(&raw)?)),
        None => Ok(None),
    }
}

/// Every staff phone (full number, for the administrator's list) and its record.
pub fn staff(store: &Store) -> Result<Vec<(String, Staff)>, StoreError> {
    store
        .aux_scan(NS_STAFF, b"")?
        .iter()
        .map(|(k, v)| {
            Ok((
                String::from_utf8_lossy(k).into_owned(),
                codec::decode_aux(v)?,
            ))
        })
        .collect()
}

/// What a PIN check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    Ok,
    /// Wrong; this many tries left before the lockout.
    Wrong {
        left: u32,
    },
    /// Locked until then (this try was not checked).
    Locked {
        until_ms: i64,
    },
}

/// Until when the staff phone is locked at `now` (`None`: not locked).
pub fn locked_until(staff: &Staff, now: DateTime<Utc>) -> Option<i64> {
    staff
        .locked_until_ms
        .filter(|until| now.timestamp_millis() < *until)
}

/// Checks `given` against the staff phone's PIN (not while locked), and the new failure
/// state to store with the answer (`None`: unchanged).
pub fn check_pin(staff: &Staff, given: &str, now: DateTime<Utc>) -> (PinCheck, Option<Staff>) {
    let seen = locked_until(staff, now)
        .is_none()
        .then(|| pin::verify(given, &staff.pin_hash));
    settle(staff, seen, now)
}

/// The answer to a PIN whose check came to `seen` (`Some(right)`; `None`: not checked, the
/// phone was locked), under the staff record as it is now, and the new failure state to
/// store with it (`None`: unchanged). The SMS command checks the PIN before the MO is
/// stored and settles it in the MO's transaction: a lock taken in between refuses it, and
/// a PIN that was not checked is refused without counting.
pub fn settle(staff: &Staff, seen: Option<bool>, now: DateTime<Utc>) -> (PinCheck, Option<Staff>) {
    if let Some(until_ms) = locked_until(staff, now) {
        return (PinCheck::Locked { until_ms }, None);
    }
    let mut s = staff.clone();
    s.locked_until_ms = None;
    if s.locked_until_ms != staff.locked_until_ms {
        // The lock ran out: a fresh count.
        s.failures = 0;
    }
    match seen {
        Some(true) => {
            let changed = (s != *staff || s.failures > 0).then(|| Staff {
                failures: 0,
                ..s.clone()
            });
            (PinCheck::Ok, changed)
        }
        None => {
            let left = MAX_FAILURES.saturating_sub(s.failures).max(1);
            (PinCheck::Wrong { left }, (s != *staff).then_some(s))
        }
        Some(false) => {
            s.failures += 1;
            if s.failures >= MAX_FAILURES {
                let until = now
                    .timestamp_millis()
                    .saturating_add(LOCKOUT_MINUTES * 60_000);
                s.locked_until_ms = Some(until);
                return (PinCheck::Locked { until_ms: until }, Some(s));
            }
            (
                PinCheck::Wrong {
                    left: MAX_FAILURES - s.failures,
                },
                Some(s),
            )
        }
    }
}

/// Writes a staff record inside a transaction (the PIN failure state).
pub fn put_staff_in(tx: &mut WriteTx<'_>, phone: &Msisdn, s: &Staff) -> Result<(), TxError> {
    tx.aux_put(NS_STAFF, phone.as_str().as_bytes(), &codec::encode_aux(s)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_phone_with_a_hashed_pin_and_a_lockout() {
        let store = Store::open_temporary().unwrap();
        let phone = Msisdn::parse("0754200001").unwrap();
        assert!(matches!(
            add_staff(&store, "HF1", &phone, "1234"),
            Err(FacilityError::NoFacility(_))
        ));
        let f = Facility {
            code: "dsp001".into(),
            name: "Mwananyamala".into(),
            level: 'D',
            care_type: 'O',
        };
        put_facility(&store, &f).unwrap();
        assert!(matches!(
            add_staff(&store, "DSP001", &phone, "12"),
            Err(FacilityError::Pin(_))
        ));
        add_staff(&store, "dsp001", &phone, "1234").unwrap();
        let s = staff_of(&store, &phone).unwrap().unwrap();
        assert_eq!(s.hf, "DSP001");
        assert!(!s.pin_hash.contains("1234"));
        let now = Utc::now();
        assert_eq!(check_pin(&s, "1234", now), (PinCheck::Ok, None));
        let mut cur = s;
        for left in (1..MAX_FAILURES).rev() {
            let (c, next) = check_pin(&cur, "9999", now);
            assert_eq!(c, PinCheck::Wrong { left });
            cur = next.unwrap();
        }
        let (c, locked) = check_pin(&cur, "9999", now);
        assert!(matches!(c, PinCheck::Locked { .. }));
        let locked = locked.unwrap();
        // Locked: even the right PIN is not checked.
        assert!(matches!(
            check_pin(&locked, "1234", now).0,
            PinCheck::Locked { .. }
        ));
        let later = now + chrono::Duration::minutes(LOCKOUT_MINUTES + 1);
        let (c, reset) = check_pin(&locked, "1234", later);
        assert_eq!(c, PinCheck::Ok);
        assert_eq!(reset.unwrap().failures, 0);
        // Settled later: a lock taken between the check and the answer refuses a right
        // PIN; a PIN not checked (locked then) is refused without counting.
        assert!(matches!(
            settle(&locked, Some(true), now).0,
            PinCheck::Locked { .. }
        ));
        let fresh = staff_of(&store, &phone).unwrap().unwrap();
        assert_eq!(
            settle(&fresh, None, now),
            (PinCheck::Wrong { left: MAX_FAILURES }, None)
        );
        assert_eq!(settle(&locked, None, later).1.unwrap().failures, 0);
        assert!(normalize_code("HF 1").is_err());
        assert_eq!(facilities(&store).unwrap().len(), 1);
    }
}
