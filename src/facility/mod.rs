//! Health facilities verifying a patient's cover (issue 21): the facilities (`tblHF` by HF
//! code) and their staff phones, the verification answer over the domain's eligibility
//! rule, its record and per-facility daily count, and the `HAKIKI` / `VERIFY` SMS command.
//!
//! Owns: aux namespaces `facility.hf` (HF code → facility), `facility.staff` (phone → staff:
//! facility, PIN hash, lockout), `facility.log` (every verification) and `facility.daily`
//! (per day and facility, a count); the SMS command's screen ([`screen::FacilityScreen`]:
//! the PIN checked and masked before the MO is stored).
//! Must never: answer about a patient to a phone that is not a registered staff phone (the
//! member journeys answer those, under `[privacy]`), keep a PIN or a full staff phone
//! number in a record or a log (PINs are Argon2 hashes, `domain::pin`; records keep the
//! masked phone), or decide eligibility itself (`domain::eligibility` does).

pub mod central;
pub mod registry;
pub mod screen;
pub mod sms;
pub mod verify;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FacilityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("PIN: {0}")]
    Pin(#[from] crate::domain::pin::PinError),
    #[error("no facility with HF code {0:?}")]
    NoFacility(String),
    #[error("HF code {0:?} must be 1 to 8 letters or digits")]
    Code(String),
    #[error("central database: {0}")]
    Central(String),
}
