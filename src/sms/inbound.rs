//! Inbound SMS (MO), whatever the channel (SMPP deliver_sm, `POST /sms/inbound`): dedupe,
//! store durably together with the replies the router owes, and say so only once flushed.
//!
//! Owns: the stored MO record (aux namespace `sms.mo`), the dedupe markers (`sms.mo.seen`),
//! the per-phone MO limit's effect (the limiter is the [`MoPipeline`]'s; an MO over it is
//! stored and acknowledged like any other, marked in `sms.mo.refused`, and not routed; the
//! phone gets the [`TOO_MANY_TEMPLATE`] SMS at most once per limit window), and the single
//! transaction that stores an MO and enqueues its replies, the screening before it
//! ([`super::router::MoScreen`]: the text stored is the masked one, its note in
//! `sms.mo.note`, and the redelivery key is recomputed from the masked text, since the
//! channel's key hashes the text as received).
//! Must never: report an MO as accepted before the write is on disk (the SMSC deletes its
//! copy when we answer), owe two replies for one MO (reply keys derive from the MO id), or
//! write a screened MO's text as received (a PIN, or a cheap hash of a text holding one).
//!
//! Redelivery or resend: an SMPP copy of the same content from the same sender within
//! `[smpp] mo_dedupe_secs` (30 s by default) of the last copy answered is the SMSC
//! delivering again: dropped. Later, up to [`RESEND_WINDOW`] after the first, it is a person
//! who got no reply and sends again: nothing is stored or run again, and the replies of the
//! first are owed once more (at most [`MAX_RESENDS`] times; see
//! [`super::router::MoHandler::resend`]); the copy marks live in `sms.mo.copy`. After that it
//! is a new MO. Over HTTP the aggregator's id decides: the same id is a retry, never
//! answered twice; a person's resend comes with a new id (a new MO).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pipeline::MoPipeline;
use super::router::{self, Screened};
use super::templates::Templates;
use crate::domain::{Id, Language, Msisdn};
use crate::ratelimit::Decision;
use crate::store::{codec, Abort, Store, StoreError, TxError, TxResult, WriteError, WriteTx};

pub(crate) const NS_MO: &str = "sms.mo";
const NS_SEEN: &str = "sms.mo.seen";
const NS_REFUSED: &str = "sms.mo.refused";
const NS_NOTE: &str = "sms.mo.note";
const NS_COPY: &str = "sms.mo.copy";
/// How long after an MO the same content from the same sender is a resend of it (answered
/// with the same replies) rather than a new message: the window the README always promised.
pub const RESEND_WINDOW: Duration = Duration::from_secs(600);
/// Resends of one MO answered again; later copies are dropped (each answer is a paid SMS).
pub const MAX_RESENDS: u32 = 3;
/// The SMS a phone over the MO limit gets (once per limit window).
pub const TOO_MANY_TEMPLATE: &str = "too_many_messages";

/// Where an MO came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    Smpp,
    Http,
}

/// How long an MO's identity blocks a second copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedupe {
    /// The sender gave an id (HTTP aggregators): the same id is the same MO, always.
    Forever(String),
    /// No id (SMPP): the same content from the same sender within the window is a
    /// redelivery; after it, the officer really sent it again.
    Within(String, Duration),
}

impl Dedupe {
    fn key(&self) -> &str {
        match self {
            Dedupe::Forever(k) | Dedupe::Within(k, _) => k,
        }
    }
}

/// An MO as the channel adapters hand it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mo {
    pub from: String,
    pub to: String,
    pub text: String,
    pub channel: Channel,
    pub dedupe: Dedupe,
    /// Segments it was reassembled from (1 for a single SMS).
    pub parts: u8,
    /// False when reassembly timed out with segments missing.
    pub complete: bool,
}

/// The stored MO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMo {
    pub id: Id,
    pub from: String,
    pub to: String,
    pub text: String,
    pub channel: Channel,
    pub received_ms: i64,
    pub parts: u8,
    pub complete: bool,
    /// Outbox seqs of the replies enqueued with it.
    pub replies: Vec<u64>,
}

impl StoredMo {
    /// The sender as an MSISDN, when it is one (alphanumeric senders are not).
    pub fn msisdn(&self) -> Option<Msisdn> {
        Msisdn::parse(&self.from).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Stored(Id),
    /// A copy of an MO already stored under this id; nothing new was written.
    Duplicate(Id),
}

impl Accepted {
    pub fn id(self) -> Id {
        match self {
            Accepted::Stored(id) | Accepted::Duplicate(id) => id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The store failed: temporary from the sender's view, it should deliver again.
    #[error("storing the MO failed: {0}")]
    Store(#[from] StoreError),
    /// Screening the text panicked: nothing stored, the sender should deliver again.
    #[error("screening the MO failed")]
    Screen(#[source] tokio::task::JoinError),
    /// A multipart MO's segments kept changing while it was screened: deliver again.
    #[error("the multipart MO changed while it was screened")]
    Unsettled,
}

impl From<WriteError<std::convert::Infallible>> for InboundError {
    fn from(e: WriteError<std::convert::Infallible>) -> InboundError {
        InboundError::Store(e.into())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    id: Id,
    at_ms: i64,
}

/// The mark of an MO refused by the per-phone limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub at_ms: i64,
    /// Whether this MO's refusal sent the "too many messages" SMS.
    pub notified: bool,
}

/// Stores `mo` and its replies durably; resolves once flushed.
pub async fn accept(
    store: &Store,
    pipeline: &MoPipeline,
    mo: &Mo,
    now: DateTime<Utc>,
) -> Result<Accepted, InboundError> {
    pipeline.before_store(&mo.from);
    let pre = prescreen(store, pipeline, mo, now).await?;
    let r = store.write_at(now, |tx| {
        store_screened(tx, pipeline, mo, pre.screened.as_ref())
    })?;
    store.flushed().await?;
    Ok(r)
}

/// `mo` screened by the pipeline's screen (see [`super::router::MoScreen`]), off the async
/// threads (a screen may hash a PIN: Argon2, tens of ms), and before any transaction (the
/// store's own reads are not allowed inside one).
pub(crate) async fn prescreen(
    store: &Store,
    pipeline: &MoPipeline,
    mo: &Mo,
    now: DateTime<Utc>,
) -> Result<Prescreened, InboundError> {
    let screened = match pipeline.screen().cloned() {
        Some(screen) => {
            let (st, from, text) = (store.clone(), mo.from.clone(), mo.text.clone());
            tokio::task::spawn_blocking(move || {
                router::screen(Some(&screen), &st, &from, &text, now)
            })
            .await
            .map_err(InboundError::Screen)??
        }
        None => None,
    };
    Ok(Prescreened {
        text: Some(mo.text.clone()),
        screened,
    })
}

/// What [`prescreen`] found for one text (`text: None`: nothing screened yet).
#[derive(Debug, Clone, Default)]
pub(crate) struct Prescreened {
    text: Option<String>,
    screened: Option<Screened>,
}

/// [`store_screened`] for reassembly, which stores the completed MO in the transaction that
/// consumes its last part. `None`: `pre` is not the screening of `mo`'s text while the
/// pipeline screens; nothing is stored, screen `mo` and run the transaction again (never an
/// MO stored unscreened).
pub(crate) fn store_in(
    tx: &mut WriteTx<'_>,
    pipeline: &MoPipeline,
    mo: &Mo,
    pre: &Prescreened,
) -> TxResult<Option<Accepted>> {
    if pipeline.screen().is_some() && pre.text.as_deref() != Some(mo.text.as_str()) {
        return Ok(None);
    }
    store_screened(tx, pipeline, mo, pre.screened.as_ref()).map(Some)
}

/// The transactional core of [`accept`]: `mo` as screened (its text replaced by the masked
/// one) is deduped, stored, limited and routed.
fn store_screened(
    tx: &mut WriteTx<'_>,
    pipeline: &MoPipeline,
    mo: &Mo,
    screened: Option<&Screened>,
) -> TxResult<Accepted> {
    let masked;
    let mo = match screened {
        Some(s) => {
            masked = screened_mo(mo, s);
            &masked
        }
        None => mo,
    };
    let now_ms = tx.now().timestamp_millis();
    let key = mo.dedupe.key().as_bytes();
    if let Some(raw) = tx.aux_get(NS_SEEN, key)? {
        let seen: Seen = codec::decode(&raw).map_err(codec_err)?;
        match copy_of(tx, &mo.dedupe, &seen, now_ms)? {
            Copy::Redelivery => return Ok(Accepted::Duplicate(seen.id)),
            Copy::Resend(mark) => {
                resend(tx, pipeline, seen.id, key, mark)?;
                return Ok(Accepted::Duplicate(seen.id));
            }
            Copy::New => {}
        }
    }
    let id = tx.next_id()?;
    let mut stored = StoredMo {
        id,
        from: mo.from.clone(),
        to: mo.to.clone(),
        text: mo.text.clone(),
        channel: mo.channel,
        received_ms: now_ms,
        parts: mo.parts,
        complete: mo.complete,
        replies: Vec::new(),
    };
    // The note first: a handler answers from it in this transaction ([`note_in`]).
    if let Some(s) = screened {
        tx.aux_put(NS_NOTE, &id.to_be_bytes(), &s.note)?;
    }
    let templates = pipeline.templates();
    stored.replies = match limit(pipeline, mo) {
        Decision::Allowed => router::route(pipeline.handlers(), tx, templates, &stored)?,
        Decision::Refused {
            retry_after,
            notify,
        } => refuse(tx, templates, &stored, retry_after, notify)?,
    };
    tx.aux_put(NS_MO, &id.to_be_bytes(), &encode(&stored)?)?;
    let seen = Seen { id, at_ms: now_ms };
    tx.aux_put(NS_SEEN, key, &encode(&seen)?)?;
    Ok(Accepted::Stored(id))
}

/// What a second copy of a seen MO is.
enum Copy {
    /// The sender's retry (the same HTTP id; SMPP within the redelivery window).
    Redelivery,
    /// A person sending it again: answer again; the mark to write.
    Resend(CopyMark),
    /// Too long after: a new message.
    New,
}

/// The last resend of an MO answered, and how many were.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct CopyMark {
    last_ms: i64,
    resends: u32,
}

fn copy_of(tx: &WriteTx<'_>, dedupe: &Dedupe, seen: &Seen, now_ms: i64) -> TxResult<Copy> {
    let Dedupe::Within(key, window) = dedupe else {
        return Ok(Copy::Redelivery);
    };
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mark: Option<CopyMark> = match tx.aux_get(NS_COPY, key.as_bytes())? {
        Some(raw) => codec::decode(&raw).ok(),
        None => None,
    };
    let last = mark.map_or(seen.at_ms, |m| m.last_ms);
    if now_ms.saturating_sub(last) < ms(*window) {
        return Ok(Copy::Redelivery);
    }
    if now_ms.saturating_sub(seen.at_ms) < ms(RESEND_WINDOW.max(*window)) {
        let resends = mark.map_or(0, |m| m.resends).saturating_add(1);
        return Ok(Copy::Resend(CopyMark {
            last_ms: now_ms,
            resends,
        }));
    }
    Ok(Copy::New)
}

/// Owes the replies of MO `id` again (a person's resend), unless it was refused by the
/// limit or resent [`MAX_RESENDS`] times already. Nothing is stored or routed anew.
fn resend(
    tx: &mut WriteTx<'_>,
    pipeline: &MoPipeline,
    id: Id,
    key: &[u8],
    mark: CopyMark,
) -> TxResult<()> {
    tx.aux_put(NS_COPY, key, &encode(&mark)?)?;
    if mark.resends > MAX_RESENDS || tx.aux_get(NS_REFUSED, &id.to_be_bytes())?.is_some() {
        return Ok(());
    }
    let Some(raw) = tx.aux_get(NS_MO, &id.to_be_bytes())? else {
        return Ok(());
    };
    let first: StoredMo = codec::decode(&raw).map_err(codec_err)?;
    let seqs = router::resend(
        pipeline.handlers(),
        tx,
        pipeline.templates(),
        &first,
        mark.resends,
    )?;
    tracing::info!(
        mo_id = id,
        resend = mark.resends,
        replies = seqs.len(),
        "MO sent again after the redelivery window: its replies owed again"
    );
    Ok(())
}

/// `mo` as it is stored once screened: the masked text, and a redelivery key from the
/// masked text and the screen's key material instead of the channel's (which hashed the text as
/// received). An aggregator's id stays: it holds no text.
fn screened_mo(mo: &Mo, s: &Screened) -> Mo {
    let key = || {
        let h = fnv64(&[
            mo.from.as_bytes(),
            mo.to.as_bytes(),
            s.text.as_bytes(),
            &s.key,
        ]);
        format!("screened:{h:016x}")
    };
    let dedupe = match &mo.dedupe {
        Dedupe::Forever(k) => Dedupe::Forever(k.clone()),
        Dedupe::Within(_, w) => Dedupe::Within(key(), *w),
    };
    Mo {
        text: s.text.clone(),
        dedupe,
        ..mo.clone()
    }
}

/// The screening note kept with MO `id` (see [`super::router::MoScreen`]).
pub fn note(store: &Store, id: Id) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(store
        .aux_get(NS_NOTE, &id.to_be_bytes())?
        .map(|v| v.to_vec()))
}

/// The same, inside the transaction that stores MO `id` (its handler's).
pub fn note_in(tx: &WriteTx<'_>, id: Id) -> Result<Option<Vec<u8>>, TxError> {
    tx.aux_get(NS_NOTE, &id.to_be_bytes())
}

/// The per-phone limit's decision for `mo`. Runs inside the store transaction, which may
/// be re-run: the MO's dedupe key makes the decision once per MO.
fn limit(pipeline: &MoPipeline, mo: &Mo) -> Decision {
    let (Some(limiter), Ok(from)) = (pipeline.limiter(), Msisdn::parse(&mo.from)) else {
        return Decision::Allowed;
    };
    let token = fnv64(&[mo.dedupe.key().as_bytes()]);
    let (d, decided) = limiter.check_idempotent(from.as_str(), token, Instant::now());
    let refused_now = match d {
        Decision::Refused {
            retry_after,
            notify,
        } if decided => Some((retry_after, notify)),
        _ => None,
    };
    if let Some((retry_after, notify)) = refused_now {
        pipeline
            .counters()
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
        // A warning once per window per phone: a looping sender must not flood the log.
        if notify {
            tracing::warn!(
                from = %from.masked(),
                retry_after_s = retry_after.as_secs(),
                "MO over the per-phone rate limit: kept, not processed (further ones logged at debug)"
            );
        } else {
            tracing::debug!(from = %from.masked(), "MO over the per-phone rate limit");
        }
    }
    d
}

/// Marks `mo` refused and, when `notify`, owes the sender the "too many messages" SMS in
/// its language (the officer's, else Kiswahili). Returns the outbox seqs.
fn refuse(
    tx: &mut WriteTx<'_>,
    templates: &Templates,
    mo: &StoredMo,
    retry_after: Duration,
    notify: bool,
) -> TxResult<Vec<u64>> {
    let mark = Refused {
        at_ms: mo.received_ms,
        notified: notify,
    };
    tx.aux_put(NS_REFUSED, &mo.id.to_be_bytes(), &encode(&mark)?)?;
    let Some(from) = mo.msisdn().filter(|_| notify) else {
        return Ok(Vec::new());
    };
    let language = tx
        .officer_by_phone(&from)?
        .map(|o| o.language)
        .unwrap_or(Language::Sw);
    let minutes = retry_after.as_secs().div_ceil(60).max(1);
    let vars = HashMap::from([("minutes", minutes.to_string())]);
    let Ok(text) = templates.render(TOO_MANY_TEMPLATE, language, &vars) else {
        tracing::warn!("no {TOO_MANY_TEMPLATE} SMS template: the phone is not told");
        return Ok(Vec::new());
    };
    let sms = super::OutboundSms {
        to: from,
        text,
        template: TOO_MANY_TEMPLATE.to_string(),
        language,
        reference: format!("mo:{}", mo.id),
    };
    let key = format!("mo:{}:0:{TOO_MANY_TEMPLATE}", mo.id);
    Ok(vec![super::outbound::enqueue(tx, &key, &sms)?])
}

/// The refusal mark of MO `id`, if the per-phone limit refused it.
pub fn refused(store: &Store, id: Id) -> Result<Option<Refused>, StoreError> {
    match store.aux_get(NS_REFUSED, &id.to_be_bytes())? {
        Some(raw) => Ok(Some(codec::decode_aux(&raw)?)),
        None => Ok(None),
    }
}

fn codec_err(source: codec::CodecError) -> Abort<std::convert::Infallible> {
    Abort::Store(TxError::from(StoreError::Codec {
        tree: "aux",
        source,
    }))
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, TxError> {
    codec::encode(v).map_err(|source| {
        TxError::from(StoreError::Codec {
            tree: "aux",
            source,
        })
    })
}

/// Replaces a stored MO's text with the PIN-masked copy the officer worker audits, in the
/// worker's own transaction: once the command is done a PIN must not stay at rest in clear.
pub fn mask_in(tx: &mut WriteTx<'_>, id: Id, masked: &str) -> Result<(), TxError> {
    let key = id.to_be_bytes();
    let Some(raw) = tx.aux_get(NS_MO, &key)? else {
        return Ok(());
    };
    let mut mo: StoredMo = codec::decode(&raw).map_err(|source| {
        TxError::from(StoreError::Codec {
            tree: "aux",
            source,
        })
    })?;
    if mo.text != masked {
        mo.text = masked.to_string();
        tx.aux_put(NS_MO, &key, &encode(&mo)?)?;
    }
    Ok(())
}

/// A stored MO by id.
pub fn get(store: &Store, id: Id) -> Result<Option<StoredMo>, StoreError> {
    match store.aux_get(NS_MO, &id.to_be_bytes())? {
        Some(raw) => Ok(Some(codec::decode(&raw).map_err(|source| {
            StoreError::Codec {
                tree: "aux",
                source,
            }
        })?)),
        None => Ok(None),
    }
}

/// Every stored MO, oldest first (for operators and tests; scans).
pub fn all(store: &Store) -> Result<Vec<StoredMo>, StoreError> {
    store
        .aux_scan(NS_MO, b"")?
        .into_iter()
        .map(|(_, v)| codec::decode_aux(&v))
        .collect()
}

/// A stable 64-bit FNV-1a, for dedupe keys that must not change across builds.
pub fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Limiter;
    use crate::sms::{self, SMS_TOPIC};
    use chrono::TimeZone;
    use std::path::Path;

    pub(crate) fn templates() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates")).unwrap()
    }

    /// The pipeline with no command handler: HELP answers everything.
    fn pipeline(limiter: Option<Limiter>) -> MoPipeline {
        MoPipeline::new(std::sync::Arc::new(templates()), Vec::new()).with_limit(limiter)
    }

    fn mo(text: &str, dedupe: Dedupe) -> Mo {
        Mo {
            from: "255754000001".into(),
            to: "15200".into(),
            text: text.into(),
            channel: Channel::Smpp,
            dedupe,
            parts: 1,
            complete: true,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    #[tokio::test]
    async fn an_mo_is_stored_with_one_help_reply_and_a_redelivery_adds_nothing() {
        let store = Store::open_temporary().unwrap();
        let tpl = pipeline(None);
        let window = Dedupe::Within("k1".into(), Duration::from_secs(600));
        let first = accept(&store, &tpl, &mo("REG 1", window.clone()), t(0))
            .await
            .unwrap();
        let again = accept(&store, &tpl, &mo("REG 1", window.clone()), t(10))
            .await
            .unwrap();
        assert!(matches!(first, Accepted::Stored(_)));
        assert_eq!(again, Accepted::Duplicate(first.id()));
        assert_eq!(store.pending_count(SMS_TOPIC).unwrap(), 1);
        let stored = get(&store, first.id()).unwrap().unwrap();
        assert_eq!(stored.text, "REG 1");
        assert_eq!(stored.replies.len(), 1);
        let items = store
            .claim(SMS_TOPIC, 10, Duration::from_secs(5), Utc::now())
            .unwrap();
        let reply = sms::outbound::decode(&items[0].payload).unwrap();
        assert_eq!(reply.template, "help");
        assert_eq!(reply.to.as_str(), "255754000001");
        assert!(reply.text.starts_with("CHF: Piga"), "{}", reply.text);
        // After the window the same text is a new message.
        let later = accept(&store, &tpl, &mo("REG 1", window), t(601))
            .await
            .unwrap();
        assert!(matches!(later, Accepted::Stored(id) if id != first.id()));
        assert_eq!(all(&store).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_resend_after_the_redelivery_window_owes_the_first_reply_again_a_few_times() {
        let store = Store::open_temporary().unwrap();
        let tpl = pipeline(None);
        let w = Dedupe::Within("k2".into(), Duration::from_secs(30));
        let send = |s: i64| {
            let (store, tpl, m) = (&store, &tpl, mo("HALI 1", w.clone()));
            async move { accept(store, tpl, &m, t(s)).await.unwrap() }
        };
        let first = send(0).await;
        let owed = |n: usize| assert_eq!(store.pending_count(SMS_TOPIC).unwrap(), n);
        owed(1);
        // The SMSC again, within 30 s: nothing.
        assert_eq!(send(20).await, Accepted::Duplicate(first.id()));
        owed(1);
        // The person, after 30 s: the same reply again, nothing stored.
        assert_eq!(send(45).await, Accepted::Duplicate(first.id()));
        owed(2);
        // The SMSC redelivering that copy: within 30 s of it, nothing.
        send(60).await;
        owed(2);
        // Two more resends are answered, then no more (each is a paid SMS).
        for s in [100, 140, 180, 220] {
            send(s).await;
        }
        owed(4);
        assert_eq!(all(&store).unwrap().len(), 1);
        // 10 minutes after the first: a new message.
        assert!(matches!(send(601).await, Accepted::Stored(id) if id != first.id()));
        let items = store
            .claim(SMS_TOPIC, 10, Duration::from_secs(5), Utc::now())
            .unwrap();
        let texts: Vec<String> = items
            .iter()
            .map(|i| sms::outbound::decode(&i.payload).unwrap().text)
            .collect();
        assert_eq!(texts.len(), 5);
        assert!(texts.iter().all(|x| *x == texts[0]), "{texts:?}");
    }

    #[tokio::test]
    async fn an_id_from_the_sender_dedupes_forever_and_odd_senders_get_no_reply() {
        let store = Store::open_temporary().unwrap();
        let tpl = pipeline(None);
        let mut m = mo("HELP", Dedupe::Forever("http:abc".into()));
        m.from = "INFO".into();
        let a = accept(&store, &tpl, &m, t(0)).await.unwrap();
        let b = accept(&store, &tpl, &m, t(86_400 * 30)).await.unwrap();
        assert_eq!(b, Accepted::Duplicate(a.id()));
        assert_eq!(store.pending_count(SMS_TOPIC).unwrap(), 0);
        assert!(get(&store, a.id()).unwrap().unwrap().replies.is_empty());
    }

    #[test]
    fn over_the_limit_an_mo_is_kept_marked_and_not_routed_and_the_phone_told_once() {
        let store = Store::open_temporary().unwrap();
        let limiter = Limiter::new(crate::ratelimit::Rate::per_hour(60, 2).unwrap(), 100);
        let tpl = pipeline(Some(limiter));
        let limiter = tpl.limiter().unwrap();
        let send = |n: u32| {
            let m = mo(&format!("HALI {n}"), Dedupe::Forever(format!("http:{n}")));
            let a = store
                .write_at(t(i64::from(n)), |tx| store_screened(tx, &tpl, &m, None))
                .unwrap();
            a.id()
        };
        let ids: Vec<Id> = (0..5).map(send).collect();
        let marks: Vec<Option<bool>> = ids
            .iter()
            .map(|id| refused(&store, *id).unwrap().map(|r| r.notified))
            .collect();
        assert_eq!(marks, [None, None, Some(true), Some(false), Some(false)]);
        // Every MO is kept; the refused ones owe nothing but the one notice.
        assert_eq!(all(&store).unwrap().len(), 5);
        let owed: Vec<usize> = ids
            .iter()
            .map(|id| get(&store, *id).unwrap().unwrap().replies.len())
            .collect();
        assert_eq!(owed, [1, 1, 1, 0, 0]);
        // A redelivery is a duplicate before the limit is asked: nothing spent or counted.
        let again = mo("HALI 0", Dedupe::Forever("http:0".into()));
        let dup = store
            .write_at(t(9), |tx| store_screened(tx, &tpl, &again, None))
            .unwrap();
        assert_eq!(dup, Accepted::Duplicate(ids[0]));
        assert_eq!(limiter.refused(), 3);
        // Two HELP replies (an unknown sender) and one "too many" SMS, in Kiswahili.
        let items = store
            .claim(SMS_TOPIC, 10, Duration::from_secs(5), Utc::now())
            .unwrap();
        let sent: Vec<_> = items
            .iter()
            .map(|i| sms::outbound::decode(&i.payload).unwrap())
            .collect();
        let names: Vec<&str> = sent.iter().map(|s| s.template.as_str()).collect();
        assert_eq!(names, ["help", "help", TOO_MANY_TEMPLATE]);
        assert!(sent[2].text.contains("dakika 1."), "{}", sent[2].text);
    }

    #[test]
    fn the_limit_ignores_senders_that_are_not_phones_and_decides_once_per_mo() {
        let limiter = Limiter::new(crate::ratelimit::Rate::per_hour(60, 1).unwrap(), 100);
        let limited = pipeline(Some(limiter));
        let mut svc = mo("x", Dedupe::Forever("http:a".into()));
        svc.from = "INFO".into();
        assert!((0..5).all(|_| limit(&limited, &svc).allowed()));
        let m = mo("x", Dedupe::Forever("http:b".into()));
        // A transaction re-run for the same MO gets the same answer and spends nothing.
        assert!(limit(&limited, &m).allowed());
        assert!(limit(&limited, &m).allowed());
        assert!(!limit(&limited, &mo("y", Dedupe::Forever("http:c".into()))).allowed());
        assert!(limit(&pipeline(None), &m).allowed());
    }

    #[test]
    fn fnv_is_stable_and_separates_fields() {
        assert_eq!(fnv64(&[b"a"]), fnv64(&[b"a"]));
        assert_ne!(fnv64(&[b"ab", b"c"]), fnv64(&[b"a", b"bc"]));
    }
}
