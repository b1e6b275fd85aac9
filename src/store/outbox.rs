//! The durable outbox: work (SMS, GePG requests, mirror pushes) recorded in the same
//! transaction as the business write that causes it, and handed to consumers at least once.
//!
//! - **Entries** live in `outbox` under `(topic, seq)`; `seq` is a store-wide increasing id,
//!   so claims of one topic are FIFO among the entries that are ready.
//! - **Dedupe**: `outbox_keys` maps `(topic, idempotency key)` to a marker (`Pending`,
//!   `Done` or `Dead`). A push whose key has a marker is a no-op returning the first seq.
//!   Markers outlive [`Store::ack`]: a re-push after delivery stays a no-op, so an SMS is
//!   never queued twice. **Retention**: markers are kept until [`Store::prune_done`] removes
//!   `Done` markers below a seq; prune only past any window in which a producer could
//!   re-push the same key (a mirror replay, a GePG callback retry).
//! - **Leases**: [`Store::claim`] counts an attempt and leases the entry until `now + lease`,
//!   persisted, so a consumer that crashes releases its entries when the lease expires.
//!   An entry whose lease expired after its last allowed attempt goes to the dead letters.
//! - **Retry**: [`Store::retry`] records the error and schedules the next attempt after an
//!   exponential backoff (`base · 2^(attempts−1)`, capped) plus deterministic jitter (up to
//!   `jitter` of the delay, derived from seq and attempt); after `max_attempts` the entry
//!   moves to `outbox_dead` with its last error.
//!
//! `now` is always passed in. Acks are committed in memory; await [`Store::flushed`] when an
//! ack must survive a crash.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::keys::{self, TreeId};
use super::tx::{decode_in, encode_in, Sink, TxResult, TxSink};
use super::{Store, StoreError};

/// Retry behaviour of every topic.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Upper bound of the exponential delay (before jitter).
    pub cap: Duration,
    /// Attempts (claims) before an entry is dead-lettered.
    pub max_attempts: u32,
    /// Fraction (0.0..=1.0) of the delay added as jitter.
    pub jitter: f64,
}

impl Default for OutboxPolicy {
    fn default() -> OutboxPolicy {
        OutboxPolicy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            max_attempts: 10,
            jitter: 0.2,
        }
    }
}

impl OutboxPolicy {
    /// Delay before the attempt after `attempts` failed ones, for the entry `seq`.
    pub fn backoff(&self, seq: u64, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(63);
        let base = self.base.as_millis().min(u128::from(u64::MAX)) as u64;
        let delay = base
            .saturating_mul(1u64 << exp)
            .min(self.cap.as_millis() as u64);
        let frac =
            (splitmix64(seq ^ (u64::from(attempts) << 48)) >> 11) as f64 / (1u64 << 53) as f64;
        let jitter = (delay as f64 * self.jitter.clamp(0.0, 1.0) * frac) as u64;
        Duration::from_millis(delay.saturating_add(jitter))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A claimed entry. `attempts` counts claims, this one included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub seq: u64,
    pub key: String,
    pub payload: Vec<u8>,
    pub attempts: u32,
}

/// An entry that exhausted its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub seq: u64,
    pub key: String,
    pub payload: Vec<u8>,
    pub attempts: u32,
    pub last_error: String,
    pub died_at: DateTime<Utc>,
}

/// What [`Store::retry`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Ready again at `at`.
    Scheduled { at: DateTime<Utc> },
    /// Moved to the dead letters.
    Dead,
    /// No such pending entry (already acked, dead, or never pushed).
    Missing,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: String,
    payload: Vec<u8>,
    attempts: u32,
    enqueued_ms: i64,
    not_before_ms: Option<i64>,
    leased_until_ms: Option<i64>,
    last_error: Option<String>,
}

impl Entry {
    fn ready(&self, now_ms: i64) -> bool {
        self.not_before_ms.is_none_or(|t| t <= now_ms)
            && self.leased_until_ms.is_none_or(|t| t <= now_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum MarkerState {
    Pending,
    Done,
    Dead,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    seq: u64,
    state: MarkerState,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeadRecord {
    key: String,
    payload: Vec<u8>,
    attempts: u32,
    last_error: String,
    died_ms: i64,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(t: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn add_ms(t: i64, d: Duration) -> i64 {
    t.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Pushes unless the key has a marker; `seq` is the fresh seq to use for a new entry.
pub(crate) fn push<S: Sink>(
    s: &mut S,
    topic: &str,
    idempotency_key: &str,
    payload: &[u8],
    now: DateTime<Utc>,
    seq: u64,
) -> Result<u64, S::Error> {
    // Every push, business or mirror, rings its topic's bell once the commit is done.
    super::note_push(topic);
    let prefix = keys::topic_prefix(topic)?;
    let mkey = keys::marker_key(&prefix, idempotency_key)?;
    if let Some(m) = s.get(TreeId::OutboxKeys, &mkey)? {
        return Ok(decode_in::<Marker>(TreeId::OutboxKeys, &m)?.seq);
    }
    let entry = Entry {
        key: idempotency_key.to_string(),
        payload: payload.to_vec(),
        attempts: 0,
        enqueued_ms: ms(now),
        not_before_ms: None,
        leased_until_ms: None,
        last_error: None,
    };
    let marker = Marker {
        seq,
        state: MarkerState::Pending,
    };
    let ekey = keys::outbox_key(&prefix, seq);
    s.insert(TreeId::Outbox, &ekey, &encode_in(TreeId::Outbox, &entry)?)?;
    s.insert(
        TreeId::OutboxKeys,
        &mkey,
        &encode_in(TreeId::OutboxKeys, &marker)?,
    )?;
    Ok(seq)
}

fn set_marker<S: Sink>(
    s: &mut S,
    prefix: &[u8],
    key: &str,
    seq: u64,
    state: MarkerState,
) -> Result<(), S::Error> {
    let mkey = keys::marker_key(prefix, key)?;
    let m = encode_in(TreeId::OutboxKeys, &Marker { seq, state })?;
    s.insert(TreeId::OutboxKeys, &mkey, &m)
}

fn load<S: Sink>(s: &S, ekey: &[u8]) -> Result<Option<Entry>, S::Error> {
    match s.get(TreeId::Outbox, ekey)? {
        Some(b) => Ok(Some(decode_in(TreeId::Outbox, &b)?)),
        None => Ok(None),
    }
}

fn bury<S: Sink>(
    s: &mut S,
    prefix: &[u8],
    seq: u64,
    e: Entry,
    error: String,
    now_ms: i64,
) -> Result<(), S::Error> {
    let ekey = keys::outbox_key(prefix, seq);
    set_marker(s, prefix, &e.key, seq, MarkerState::Dead)?;
    let dead = DeadRecord {
        key: e.key,
        payload: e.payload,
        attempts: e.attempts,
        last_error: error,
        died_ms: now_ms,
    };
    s.remove(TreeId::Outbox, &ekey)?;
    s.insert(
        TreeId::OutboxDead,
        &ekey,
        &encode_in(TreeId::OutboxDead, &dead)?,
    )
}

impl Store {
    /// Pushes outside a business transaction (see [`super::WriteTx::outbox_push`]).
    pub fn outbox_push(
        &self,
        topic: &str,
        idempotency_key: &str,
        payload: &[u8],
    ) -> Result<u64, StoreError> {
        Ok(self.write(|tx| -> TxResult<u64> {
            Ok(tx.outbox_push(topic, idempotency_key, payload)?)
        })?)
    }

    /// Leases up to `max` ready entries of `topic`, oldest first, until `now + lease`.
    pub fn claim(
        &self,
        topic: &str,
        max: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let now_ms = ms(now);
        let mut candidates = Vec::new();
        for kv in self.read(TreeId::Outbox)?.scan_prefix(&prefix) {
            if candidates.len() >= max {
                break;
            }
            let (k, v) = kv?;
            if decode_in::<Entry>(TreeId::Outbox, &v)?.ready(now_ms) {
                candidates.push(keys::trailing_id(&k, TreeId::Outbox)?);
            }
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let policy = self.outbox_policy().clone();
        let until = add_ms(now_ms, lease);
        Ok(self.write(|tx| -> TxResult<Vec<OutboxItem>> {
            let s: &mut TxSink = tx.sink();
            let mut items = Vec::with_capacity(candidates.len());
            for &seq in &candidates {
                let ekey = keys::outbox_key(&prefix, seq);
                // Re-check inside the transaction: another consumer may have got there first.
                let Some(mut e) = load(s, &ekey)? else {
                    continue;
                };
                if !e.ready(now_ms) {
                    continue;
                }
                if e.attempts >= policy.max_attempts {
                    let why = e.last_error.clone().unwrap_or_default();
                    let error = format!("lease expired after attempt {}; {why}", e.attempts);
                    bury(s, &prefix, seq, e, error, now_ms)?;
                    continue;
                }
                e.attempts += 1;
                e.leased_until_ms = Some(until);
                s.insert(TreeId::Outbox, &ekey, &encode_in(TreeId::Outbox, &e)?)?;
                items.push(OutboxItem {
                    seq,
                    key: e.key,
                    payload: e.payload,
                    attempts: e.attempts,
                });
            }
            Ok(items)
        })?)
    }

    /// Removes a delivered entry, keeping its idempotency marker as `Done`.
    /// Returns false when there was no such pending entry.
    pub fn ack(&self, topic: &str, seq: u64) -> Result<bool, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let ekey = keys::outbox_key(&prefix, seq);
        Ok(self.write_closing(|tx| -> TxResult<bool> {
            let s = tx.sink();
            let Some(e) = load(s, &ekey)? else {
                return Ok(false);
            };
            s.remove(TreeId::Outbox, &ekey)?;
            set_marker(s, &prefix, &e.key, seq, MarkerState::Done)?;
            Ok(true)
        })?)
    }

    /// Records a failed attempt: schedules the next one with backoff, or dead-letters the
    /// entry once it has had `max_attempts`.
    pub fn retry(
        &self,
        topic: &str,
        seq: u64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let ekey = keys::outbox_key(&prefix, seq);
        let policy = self.outbox_policy().clone();
        let now_ms = ms(now);
        Ok(self.write(|tx| -> TxResult<RetryOutcome> {
            let s = tx.sink();
            let Some(mut e) = load(s, &ekey)? else {
                return Ok(RetryOutcome::Missing);
            };
            if e.attempts >= policy.max_attempts {
                bury(s, &prefix, seq, e, error.to_string(), now_ms)?;
                return Ok(RetryOutcome::Dead);
            }
            let at = add_ms(now_ms, policy.backoff(seq, e.attempts));
            e.not_before_ms = Some(at);
            e.leased_until_ms = None;
            e.last_error = Some(error.to_string());
            s.insert(TreeId::Outbox, &ekey, &encode_in(TreeId::Outbox, &e)?)?;
            Ok(RetryOutcome::Scheduled { at: from_ms(at) })
        })?)
    }

    /// Moves a pending entry to the dead letters now, with `reason`: for a consumer that
    /// knows a retry cannot help (the receiver refused the content itself). Returns false
    /// when there was no such pending entry.
    pub fn dead_letter(
        &self,
        topic: &str,
        seq: u64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let ekey = keys::outbox_key(&prefix, seq);
        let now_ms = ms(now);
        Ok(self.write(|tx| -> TxResult<bool> {
            let s = tx.sink();
            let Some(e) = load(s, &ekey)? else {
                return Ok(false);
            };
            bury(s, &prefix, seq, e, reason.to_string(), now_ms)?;
            Ok(true)
        })?)
    }

    /// The dead letters of `topic`, oldest seq first.
    pub fn dead(&self, topic: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let mut out = Vec::new();
        for kv in self.read(TreeId::OutboxDead)?.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let d: DeadRecord = decode_in(TreeId::OutboxDead, &v)?;
            out.push(DeadLetter {
                seq: keys::trailing_id(&k, TreeId::OutboxDead)?,
                key: d.key,
                payload: d.payload,
                attempts: d.attempts,
                last_error: d.last_error,
                died_at: from_ms(d.died_ms),
            });
        }
        Ok(out)
    }

    /// Entries of `topic` not yet acked or dead (leased ones included).
    pub fn pending_count(&self, topic: &str) -> Result<usize, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let mut n = 0;
        for kv in self.read(TreeId::Outbox)?.scan_prefix(&prefix) {
            kv?;
            n += 1;
        }
        Ok(n)
    }

    /// How long the oldest pending entry of `topic` has waited; `None` when none is pending.
    pub fn oldest_pending_age(
        &self,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let Some(kv) = self.read(TreeId::Outbox)?.scan_prefix(&prefix).next() else {
            return Ok(None);
        };
        let (_, v) = kv?;
        let e: Entry = decode_in(TreeId::Outbox, &v)?;
        let age = ms(now).saturating_sub(e.enqueued_ms).max(0);
        Ok(Some(Duration::from_millis(age as u64)))
    }

    /// Forgets the `Done` markers of `topic` with a seq below `before_seq`, after which
    /// those idempotency keys could be pushed again. Returns how many were removed.
    pub fn prune_done(&self, topic: &str, before_seq: u64) -> Result<usize, StoreError> {
        let prefix = keys::topic_prefix(topic)?;
        let tree = self.read(TreeId::OutboxKeys)?;
        let mut n = 0;
        for kv in tree.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let m: Marker = decode_in(TreeId::OutboxKeys, &v)?;
            if m.state == MarkerState::Done && m.seq < before_seq {
                tree.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::{StoreOptions, TxResult};
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn a_commit_that_pushes_rings_its_topic_bell_and_no_other() {
        let store = Store::open_temporary().unwrap();
        let sms = store.outbox_bell("sms");
        let mirror_only = store.outbox_bell("other");
        store.outbox_push("sms", "k1", b"x").unwrap();
        // The permit waits for the consumer, even though nobody was waiting at the commit.
        tokio::time::timeout(Duration::from_secs(1), sms.notified())
            .await
            .expect("rung");
        // Nothing pushed to "other" (the mirror topic may ring; "other" must not).
        let quiet = tokio::time::timeout(Duration::from_millis(50), mirror_only.notified()).await;
        assert!(quiet.is_err(), "a topic nobody pushed to was rung");
        // An aborted transaction rings nothing.
        let r = store.write(|tx| -> TxResult<(), &'static str> {
            tx.outbox_push("sms", "k2", b"y")?;
            Err(super::super::Abort::User("no"))
        });
        assert!(r.is_err());
        let quiet = tokio::time::timeout(Duration::from_millis(50), sms.notified()).await;
        assert!(quiet.is_err(), "an aborted push rang the bell");
    }

    fn secs(s: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(s)
    }

    fn store(policy: OutboxPolicy) -> Store {
        let options = StoreOptions {
            outbox_policy: policy,
            ..StoreOptions::default()
        };
        Store::open_temporary_with(options).unwrap()
    }

    fn no_jitter() -> OutboxPolicy {
        OutboxPolicy {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(60),
            max_attempts: 3,
            jitter: 0.0,
        }
    }

    fn keys_of(items: &[OutboxItem]) -> Vec<&str> {
        items.iter().map(|i| i.key.as_str()).collect()
    }

    #[test]
    fn pushing_a_key_twice_keeps_one_entry_and_returns_the_first_seq() {
        let s = Store::open_temporary().unwrap();
        let a = s.outbox_push("sms", "k1", b"one").unwrap();
        let b = s.outbox_push("sms", "k1", b"other payload").unwrap();
        assert_eq!(a, b);
        assert_eq!(s.pending_count("sms").unwrap(), 1);
        // The same key on another topic is another entry.
        let c = s.outbox_push("gepg", "k1", b"x").unwrap();
        assert_ne!(a, c);
        let items = s.claim("sms", 10, LEASE, t0()).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].payload, b"one");
    }

    #[test]
    fn claims_are_fifo_and_leased_until_the_lease_expires() {
        let s = Store::open_temporary().unwrap();
        for k in ["a", "b", "c"] {
            s.outbox_push("sms", k, k.as_bytes()).unwrap();
        }
        let first = s.claim("sms", 2, LEASE, t0()).unwrap();
        assert_eq!(keys_of(&first), ["a", "b"]);
        assert!(first.iter().all(|i| i.attempts == 1));
        // Leased items are not handed to another consumer; the rest is.
        assert_eq!(
            keys_of(&s.claim("sms", 10, LEASE, secs(29)).unwrap()),
            ["c"]
        );
        assert!(s.claim("sms", 10, LEASE, secs(29)).unwrap().is_empty());
        // After the lease, as after a crash, they come back, counted as a new attempt.
        let again = s.claim("sms", 10, LEASE, secs(30)).unwrap();
        assert_eq!(keys_of(&again), ["a", "b"]);
        assert!(again.iter().all(|i| i.attempts == 2));
        assert_eq!(s.pending_count("sms").unwrap(), 3);
        assert!(s.claim("other", 10, LEASE, t0()).unwrap().is_empty());
    }

    #[test]
    fn a_lease_is_persisted_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
        s.outbox_push("sms", "a", b"x").unwrap();
        assert_eq!(s.claim("sms", 1, LEASE, t0()).unwrap().len(), 1);
        s.flush().unwrap();
        drop(s);
        let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(s.claim("sms", 1, LEASE, secs(10)).unwrap().is_empty());
        assert_eq!(s.claim("sms", 1, LEASE, secs(31)).unwrap().len(), 1);
    }

    #[test]
    fn ack_removes_the_entry_and_a_re_push_of_its_key_stays_a_no_op() {
        let s = Store::open_temporary().unwrap();
        let seq = s.outbox_push("sms", "receipt-30", b"Asante").unwrap();
        let items = s.claim("sms", 10, LEASE, t0()).unwrap();
        assert!(s.ack("sms", items[0].seq).unwrap());
        assert!(
            !s.ack("sms", items[0].seq).unwrap(),
            "second ack finds nothing"
        );
        assert_eq!(s.pending_count("sms").unwrap(), 0);
        assert_eq!(s.oldest_pending_age("sms", t0()).unwrap(), None);
        // A replayed callback pushes the same SMS again: nothing is queued.
        assert_eq!(s.outbox_push("sms", "receipt-30", b"Asante").unwrap(), seq);
        assert_eq!(s.pending_count("sms").unwrap(), 0);
        assert!(s.claim("sms", 10, LEASE, secs(3600)).unwrap().is_empty());
        // Pruning the marker is what allows the key again.
        assert_eq!(s.prune_done("sms", seq).unwrap(), 0, "below seq only");
        assert_eq!(s.prune_done("sms", seq + 1).unwrap(), 1);
        assert_ne!(s.outbox_push("sms", "receipt-30", b"Asante").unwrap(), seq);
    }

    #[test]
    fn retry_backs_off_exponentially_up_to_the_cap_and_keeps_fifo_among_ready_items() {
        let s = store(OutboxPolicy {
            max_attempts: 10,
            ..no_jitter()
        });
        s.outbox_push("sms", "a", b"a").unwrap();
        s.outbox_push("sms", "b", b"b").unwrap();
        let a = s.claim("sms", 1, LEASE, t0()).unwrap().remove(0);
        assert_eq!(a.key, "a");
        let r = s.retry("sms", a.seq, "SMSC timeout", t0()).unwrap();
        assert_eq!(r, RetryOutcome::Scheduled { at: secs(10) });
        // While `a` waits, `b` goes first; once `a` is ready again, it is first again.
        assert_eq!(keys_of(&s.claim("sms", 10, LEASE, secs(5)).unwrap()), ["b"]);
        let b = s.claim("sms", 10, LEASE, secs(40)).unwrap();
        assert_eq!(keys_of(&b), ["a", "b"]);
        // Delays double per attempt: 10s, 20s, 40s, then the 60s cap.
        let mut now = secs(40);
        for want in [20, 40, 60, 60] {
            let r = s.retry("sms", a.seq, "SMSC timeout", now).unwrap();
            assert_eq!(
                r,
                RetryOutcome::Scheduled {
                    at: now + chrono::Duration::seconds(want)
                }
            );
            assert!(s
                .claim("sms", 1, LEASE, now)
                .unwrap()
                .iter()
                .all(|i| i.key != "a"));
            now += chrono::Duration::seconds(want);
            let again = s.claim("sms", 10, LEASE, now).unwrap();
            assert!(again.iter().any(|i| i.key == "a"), "ready at {now}");
        }
    }

    #[test]
    fn jitter_adds_at_most_its_fraction_and_spreads_entries() {
        let p = OutboxPolicy {
            jitter: 0.5,
            ..no_jitter()
        };
        let delays: Vec<_> = (1..=50).map(|seq| p.backoff(seq, 1)).collect();
        assert!(delays
            .iter()
            .all(|d| *d >= Duration::from_secs(10) && *d <= Duration::from_secs(15)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 40, "jitter spreads retries");
        assert_eq!(p.backoff(7, 3), p.backoff(7, 3), "deterministic");
        assert_eq!(no_jitter().backoff(1, 500), Duration::from_secs(60));
    }

    #[test]
    fn an_entry_is_dead_lettered_after_max_attempts_with_its_last_error() {
        let s = store(no_jitter());
        let seq = s.outbox_push("gepg", "bill-30", b"req").unwrap();
        let mut now = t0();
        for attempt in 1..=3 {
            let items = s.claim("gepg", 1, LEASE, now).unwrap();
            assert_eq!(items[0].attempts, attempt);
            let r = s
                .retry("gepg", seq, &format!("HTTP 503 #{attempt}"), now)
                .unwrap();
            if attempt < 3 {
                assert!(matches!(r, RetryOutcome::Scheduled { .. }));
            } else {
                assert_eq!(r, RetryOutcome::Dead);
            }
            now += chrono::Duration::seconds(3600);
        }
        assert_eq!(s.pending_count("gepg").unwrap(), 0);
        assert!(s.claim("gepg", 1, LEASE, now).unwrap().is_empty());
        let dead = s.dead("gepg").unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].seq, dead[0].key.as_str(), dead[0].attempts),
            (seq, "bill-30", 3)
        );
        assert_eq!(dead[0].last_error, "HTTP 503 #3");
        assert_eq!(dead[0].payload, b"req");
        // Dead keys are not queued again either.
        assert_eq!(s.outbox_push("gepg", "bill-30", b"req").unwrap(), seq);
        assert_eq!(s.pending_count("gepg").unwrap(), 0);
        assert_eq!(
            s.retry("gepg", seq, "late", now).unwrap(),
            RetryOutcome::Missing
        );
        assert!(s.dead("sms").unwrap().is_empty());
    }

    #[test]
    fn a_refused_entry_is_dead_lettered_at_once_with_its_reason() {
        let s = Store::open_temporary().unwrap();
        let a = s.outbox_push("mirror", "policy:1:5", b"x").unwrap();
        s.outbox_push("mirror", "policy:2:6", b"y").unwrap();
        let items = s.claim("mirror", 10, LEASE, t0()).unwrap();
        assert_eq!(items.len(), 2);
        assert!(s
            .dead_letter("mirror", a, "23514: check violation", t0())
            .unwrap());
        assert!(!s.dead_letter("mirror", a, "again", t0()).unwrap());
        let dead = s.dead("mirror").unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].seq, dead[0].attempts), (a, 1));
        assert_eq!(dead[0].last_error, "23514: check violation");
        assert_eq!(s.pending_count("mirror").unwrap(), 1);
    }

    #[test]
    fn a_consumer_that_keeps_crashing_ends_in_the_dead_letters() {
        let s = store(no_jitter());
        s.outbox_push("sms", "a", b"x").unwrap();
        let mut now = t0();
        for _ in 0..3 {
            assert_eq!(s.claim("sms", 1, LEASE, now).unwrap().len(), 1);
            now += chrono::Duration::seconds(31); // crashed: the lease just runs out
        }
        assert!(s.claim("sms", 1, LEASE, now).unwrap().is_empty());
        let dead = s.dead("sms").unwrap();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].last_error.contains("lease expired"),
            "{}",
            dead[0].last_error
        );
    }

    #[test]
    fn oldest_pending_age_is_measured_from_the_writing_transaction() {
        let s = Store::open_temporary().unwrap();
        assert_eq!(s.oldest_pending_age("sms", t0()).unwrap(), None);
        s.write_at(t0(), |tx| -> TxResult<()> {
            tx.outbox_push("sms", "a", b"x")?;
            Ok(())
        })
        .unwrap();
        s.write_at(secs(50), |tx| -> TxResult<()> {
            tx.outbox_push("sms", "b", b"x")?;
            Ok(())
        })
        .unwrap();
        let age = s.oldest_pending_age("sms", secs(90)).unwrap();
        assert_eq!(age, Some(Duration::from_secs(90)));
        // A clock behind the push gives zero, not a panic.
        let age = s.oldest_pending_age("sms", secs(-10)).unwrap();
        assert_eq!(age, Some(Duration::ZERO));
    }

    #[test]
    fn bad_topics_and_keys_are_refused() {
        let s = Store::open_temporary().unwrap();
        assert!(matches!(
            s.outbox_push("", "k", b"x"),
            Err(StoreError::InvalidTopic(_))
        ));
        assert!(matches!(
            s.outbox_push("sms", "", b"x"),
            Err(StoreError::InvalidIdempotencyKey { len: 0 })
        ));
        assert!(s.claim(&"t".repeat(65), 1, LEASE, t0()).is_err());
        assert_eq!(s.counts().unwrap().outbox_pending, 0);
    }
}
