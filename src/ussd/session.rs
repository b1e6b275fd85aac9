//! Session state in the store's `aux` tree, and the per-phone records that outlive a session.
//!
//! Owns: the [`Session`] record (screen, history stack, variables, lists, retry count, the
//! cached reply of the last hop), its key per (gateway, session id, msisdn), the pointer from a
//! phone to its latest session (for resume), the language a phone chose, and the journal of
//! committed actions (written by the action in its own transaction, see [`JOURNAL_NS`]).
//! Must never: flush per hop (a session lost in a crash only restarts it), or hold anything a
//! member must not lose: that is the business write's job, durably.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::Reply;
use crate::domain::{Language, Msisdn};
use crate::store::{codec, Store, StoreError};

pub const SESSION_NS: &str = "ussd.session";
pub const PHONE_NS: &str = "ussd.phone";
pub const LANG_NS: &str = "ussd.lang";
/// Committed actions, keyed `msisdn/journey/step`; written in the action's transaction.
pub const JOURNAL_NS: &str = "ussd.journal";

/// Why a session is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ended {
    /// We sent END: the journey is complete.
    Completed,
    /// The gateway said end/abort before the journey was complete.
    Abandoned,
    /// No hop within the TTL.
    TimedOut,
}

/// Where a member was: what resume restores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub screen: String,
    pub page: u16,
    pub stack: Vec<String>,
    pub vars: BTreeMap<String, String>,
    pub lists: BTreeMap<String, Vec<(String, String)>>,
    pub tries: u8,
    /// The journey run (`<session>:<hop>` of the choice that started it) keys the journal.
    pub journey: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub gateway: String,
    pub msisdn: Msisdn,
    pub lang: Language,
    pub place: Place,
    /// A notice to show on top of the current screen once (invalid input, not found...).
    pub notice: Option<String>,
    /// The place a member may resume, while the resume prompt is on screen.
    pub resume: Option<Place>,
    pub started_ms: i64,
    pub last_ms: i64,
    pub last_hop: u32,
    pub last_reply: Option<Reply>,
    pub ended: Option<Ended>,
    pub ended_ms: Option<i64>,
}

/// The latest session of a phone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhonePointer {
    pub gateway: String,
    pub session_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session record does not decode: {0}")]
    Codec(#[from] codec::CodecError),
}

/// A session is bound to its phone: the key is (gateway, session id, msisdn), so a hop that
/// carries someone else's session id with another msisdn finds no session (it starts its
/// own), and an end event from another phone ends nothing. Gateways reuse ids too.
pub fn session_key(gateway: &str, session_id: &str, msisdn: &Msisdn) -> Vec<u8> {
    let phone = msisdn.as_str();
    let mut k = Vec::with_capacity(gateway.len() + session_id.len() + phone.len() + 2);
    k.extend_from_slice(gateway.as_bytes());
    k.push(0);
    k.extend_from_slice(session_id.as_bytes());
    k.push(0);
    k.extend_from_slice(phone.as_bytes());
    k
}

/// The session `id` of `msisdn` on `gateway`.
pub fn load(
    store: &Store,
    gateway: &str,
    id: &str,
    msisdn: &Msisdn,
) -> Result<Option<Session>, SessionError> {
    match store.aux_get(SESSION_NS, &session_key(gateway, id, msisdn))? {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Whether a session record exists, without decoding it.
pub fn exists(
    store: &Store,
    gateway: &str,
    id: &str,
    msisdn: &Msisdn,
) -> Result<bool, SessionError> {
    Ok(store
        .aux_get(SESSION_NS, &session_key(gateway, id, msisdn))?
        .is_some())
}

pub fn save(store: &Store, s: &Session) -> Result<(), SessionError> {
    let bytes = codec::encode(s)?;
    store.aux_put(SESSION_NS, &key_of(s), &bytes)?;
    Ok(())
}

/// The key `s` is stored under.
pub fn key_of(s: &Session) -> Vec<u8> {
    session_key(&s.gateway, &s.id, &s.msisdn)
}

pub fn last_of_phone(store: &Store, msisdn: &Msisdn) -> Result<Option<Session>, SessionError> {
    let Some(bytes) = store.aux_get(PHONE_NS, msisdn.as_str().as_bytes())? else {
        return Ok(None);
    };
    let p: PhonePointer = codec::decode(&bytes)?;
    load(store, &p.gateway, &p.session_id, msisdn)
}

pub fn set_last_of_phone(store: &Store, s: &Session) -> Result<(), SessionError> {
    let p = PhonePointer {
        gateway: s.gateway.clone(),
        session_id: s.id.clone(),
    };
    store.aux_put(PHONE_NS, s.msisdn.as_str().as_bytes(), &codec::encode(&p)?)?;
    Ok(())
}

pub fn language(store: &Store, msisdn: &Msisdn) -> Result<Option<Language>, SessionError> {
    Ok(store
        .aux_get(LANG_NS, msisdn.as_str().as_bytes())?
        .and_then(|b| std::str::from_utf8(&b).ok().and_then(Language::parse)))
}

pub fn set_language(store: &Store, msisdn: &Msisdn, lang: Language) -> Result<(), SessionError> {
    store.aux_put(LANG_NS, msisdn.as_str().as_bytes(), lang.code().as_bytes())?;
    Ok(())
}

/// A stored session's key, and the session unless its record does not decode.
pub type StoredSession = (Vec<u8>, Option<Session>);

/// Every stored session (for the sweeper); undecodable records are returned as `None`.
pub fn all(store: &Store) -> Result<Vec<StoredSession>, SessionError> {
    Ok(store
        .aux_scan(SESSION_NS, b"")?
        .into_iter()
        .map(|(k, v)| (k, codec::decode(&v).ok()))
        .collect())
}

pub fn remove_key(store: &Store, key: &[u8]) -> Result<(), SessionError> {
    store.aux_remove(SESSION_NS, key)?;
    Ok(())
}
