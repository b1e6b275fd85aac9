//! The audit trail (every command and its reply, kept with the officer), the MO done
//! markers, and resend detection (same officer, same text, within the window).
//!
//! Owns: aux namespaces [`NS_AUDIT`] (`officer id ‖ MO id` → [`AuditEntry`]), [`NS_DONE`]
//! (MO id → "") and [`NS_RECENT`] (`officer id ‖ hash of the normalised text` → the reply).
//! Must never: keep a PIN in clear: texts are stored with PINs masked.

use serde::{Deserialize, Serialize};

use super::{Command, Ctx};
use crate::domain::Id;
use crate::sms::inbound::fnv64;
use crate::store::{codec, Store, StoreError, TxError, WriteTx};

pub const NS_AUDIT: &str = "officer.audit";
pub const NS_DONE: &str = "officer.done";
pub const NS_RECENT: &str = "officer.recent";

/// One command as the officer sent it (PINs masked) and what we answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub mo_id: Id,
    pub officer: Id,
    pub officer_code: String,
    /// When the command was processed, and when its MO arrived (ms since the epoch).
    pub at_ms: i64,
    pub received_ms: i64,
    /// The command's name (`register`, `add`...), or `invalid`, `inactive`, `<name>-repeat`.
    pub command: String,
    pub text: String,
    pub ok: bool,
    pub reply: String,
    /// SMS sent besides the reply (to the family's head).
    pub notices: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Recent {
    at_ms: i64,
    reply: String,
}

fn codec_err(source: codec::CodecError) -> TxError {
    TxError::from(StoreError::Codec {
        tree: "aux",
        source,
    })
}

pub fn is_done(store: &Store, mo: Id) -> Result<bool, StoreError> {
    Ok(store.aux_get(NS_DONE, &mo.to_be_bytes())?.is_some())
}

pub fn is_done_in(tx: &WriteTx<'_>, mo: Id) -> Result<bool, TxError> {
    Ok(tx.aux_get(NS_DONE, &mo.to_be_bytes())?.is_some())
}

/// Writes the entry and the MO's done marker.
pub fn record_in(tx: &mut WriteTx<'_>, e: &AuditEntry) -> Result<(), TxError> {
    let mut key = e.officer.to_be_bytes().to_vec();
    key.extend_from_slice(&e.mo_id.to_be_bytes());
    tx.aux_put(NS_AUDIT, &key, &codec::encode(e).map_err(codec_err)?)?;
    tx.aux_put(NS_DONE, &e.mo_id.to_be_bytes(), b"")
}

/// The entry of MO `mo` of officer `officer`, inside a transaction.
pub fn entry_in(tx: &WriteTx<'_>, officer: Id, mo: Id) -> Result<Option<AuditEntry>, TxError> {
    let mut key = officer.to_be_bytes().to_vec();
    key.extend_from_slice(&mo.to_be_bytes());
    match tx.aux_get(NS_AUDIT, &key)? {
        Some(raw) => Ok(Some(codec::decode(&raw).map_err(codec_err)?)),
        None => Ok(None),
    }
}

/// An officer's audit trail, oldest MO first.
pub fn of_officer(store: &Store, officer: Id) -> Result<Vec<AuditEntry>, StoreError> {
    store
        .aux_scan(NS_AUDIT, &officer.to_be_bytes())?
        .into_iter()
        .map(|(_, v)| {
            codec::decode(&v).map_err(|source| StoreError::Codec {
                tree: "aux",
                source,
            })
        })
        .collect()
}

/// The key of a command for resend detection: the officer and a hash of the parsed
/// command without its PINs.
pub fn recent_key(ctx: &Ctx<'_>, cmd: &Command) -> Vec<u8> {
    let mut key = ctx.officer.id.to_be_bytes().to_vec();
    let canonical = format!("{:?}", cmd.without_pins());
    key.extend_from_slice(&fnv64(&[canonical.as_bytes()]).to_be_bytes());
    key
}

/// The reply to the same command from this officer within the window, if any.
pub fn recent_reply(ctx: &Ctx<'_>, cmd: &Command) -> Result<Option<String>, StoreError> {
    let Some(raw) = ctx.store.aux_get(NS_RECENT, &recent_key(ctx, cmd))? else {
        return Ok(None);
    };
    let Ok(r) = codec::decode::<Recent>(&raw) else {
        return Ok(None);
    };
    let window_ms = i64::try_from(ctx.settings.repeat_window_hours)
        .unwrap_or(i64::MAX / 3_600_000)
        .saturating_mul(3_600_000);
    let age = ctx.now.timestamp_millis().saturating_sub(r.at_ms);
    Ok((0..window_ms).contains(&age).then_some(r.reply))
}

pub fn remember_in(tx: &mut WriteTx<'_>, key: &[u8], reply: &str) -> Result<(), TxError> {
    let r = Recent {
        at_ms: tx.now().timestamp_millis(),
        reply: reply.to_string(),
    };
    tx.aux_put(NS_RECENT, key, &codec::encode(&r).map_err(codec_err)?)
}

/// `text` with every whole word equal to one of `pins` replaced by `****`.
pub fn mask_text(text: &str, pins: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() && pins.iter().any(|p| p == word) {
            out.push_str("****");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// For a text that did not parse: the second word, if it looks like a PIN (digits), so
/// that it is masked in the audit trail all the same.
pub fn pin_like_second_word(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .nth(1)
        .filter(|w| w.len() <= 8 && w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| vec![w.to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_masked_and_resends_compare_loosely() {
        assert_eq!(
            mask_text("REG 1234 NEW Mushi 12/03/1990", &["1234".into()]),
            "REG **** NEW Mushi 12/03/1990"
        );
        assert_eq!(
            mask_text("PIN 1234,5678", &["1234".into(), "5678".into()]),
            "PIN ****,****"
        );
        assert_eq!(pin_like_second_word("REG 12a4 x"), Vec::<String>::new());
        assert_eq!(pin_like_second_word("reg 9999 x"), vec!["9999".to_string()]);
    }
}
