//! The one consumer loop of the durable outbox: claim with a lease, run, then ack, retry with
//! backoff or dead-letter; wait on the topic's bell or the poll interval; stop on shutdown;
//! count what happened. Every outbox consumer (SMS drain, GePG bills, officer commands, the
//! mirror writer) plugs in through [`Consumer`] and keeps only what is its own: how to run
//! an item, which failures are retryable ([`Verdict::Retry`]) or permanent
//! ([`Verdict::Dead`]), and its batch and flush policy ([`LoopOptions`]).
//!
//! Owns: the claim → run → settle cycle, the in-flight marks (an entry whose lease ran out
//! while it still runs is not run a second time), the flushes that make effects durable
//! before their acks, and the handling of every ack/retry/dead-letter result (logged with
//! the store's error, never discarded).
//! Must never: ack an entry before the flushes its consumer asked for have completed,
//! claim while a batch held after [`Unavailable`] is unsettled (that would let a later
//! entry overtake it), or keep an in-flight mark after its task ended, panicked or was
//! aborted.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::outbox::{OutboxItem, RetryOutcome};
use super::Store;
use crate::shutdown::Signal;

/// What to do with one claimed entry once its consumer has run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered, its effect recorded: acknowledge.
    Done,
    /// A transient failure (peer down, timeout, a store error): try again after backoff;
    /// the outbox dead-letters it after its last allowed attempt.
    Retry(String),
    /// A retry cannot help (the content itself was refused): dead-letter now.
    Dead(String),
    /// Not run to an end (shutting down): stays leased, claimed again after the lease.
    Leave,
}

/// The consumer cannot run anything now (its peer is unreachable): the loop keeps the batch
/// claimed, backs off and runs the same batch again, without counting an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// How entries are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Up to `n` entries claimed and run together, one batch at a time; the next claim
    /// waits until the batch is settled.
    Batch(usize),
    /// Up to `n` entries in flight, each run in its own task; an entry is claimed as soon
    /// as a slot is free, and the slot is given back once its entry is settled (and
    /// flushed, with [`Flushes::after_settle`]).
    Each(usize),
}

/// Flushes the loop awaits (group-committed, so they cost one fsync per group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushes {
    /// Before running a claim: the write that queued an entry is on disk before its effect
    /// leaves the process.
    pub before_run: bool,
    /// After running, before settling: the effects a run wrote unflushed are durable before
    /// their acks (one flush for the whole batch).
    pub before_settle: bool,
    /// After settling, before claiming more in that slot: acks are durable, so a crash
    /// repeats at most one claim's worth of entries.
    pub after_settle: bool,
}

/// The loop's settings for one topic.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    pub topic: &'static str,
    pub shape: Shape,
    pub lease: Duration,
    /// How long an idle loop sleeps when its bell does not ring.
    pub poll: Duration,
    pub flush: Flushes,
    /// Backoff while the consumer is [`Unavailable`]: `base · 2^failures`, capped.
    pub unavailable_base: Duration,
    pub unavailable_cap: Duration,
    /// At shutdown, how long entries in flight may still finish before they are aborted
    /// (and stay leased, claimed again after a restart).
    pub drain: Duration,
}

impl LoopOptions {
    /// A topic's options with the defaults: one entry at a time, no flush, 1 s drain.
    pub fn new(topic: &'static str, lease: Duration, poll: Duration) -> LoopOptions {
        LoopOptions {
            topic,
            shape: Shape::Batch(1),
            lease,
            poll,
            flush: Flushes::default(),
            unavailable_base: Duration::from_millis(500),
            unavailable_cap: Duration::from_secs(60),
            drain: Duration::from_secs(1),
        }
    }

    /// The wait after `failures` consecutive [`Unavailable`] runs.
    pub fn unavailable_backoff(&self, failures: u32) -> Duration {
        self.unavailable_base
            .saturating_mul(1u32 << failures.min(20))
            .min(self.unavailable_cap)
    }
}

/// One outbox consumer: what it does with the entries the loop claims for it.
pub trait Consumer: Send + Sync + 'static {
    /// Runs claimed entries; one verdict per item, in order (a missing one is
    /// [`Verdict::Leave`]). A store error while running an item is a [`Verdict::Retry`].
    fn run(
        &self,
        items: &[OutboxItem],
    ) -> impl Future<Output = Result<Vec<Verdict>, Unavailable>> + Send;

    /// Called before each claim (periodic side work, e.g. topping up a pool).
    fn before_claim(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Called when a claim found nothing ready.
    fn idle(&self) {}

    /// Called after an entry was settled (acked, retried or dead-lettered).
    fn settled(&self, _item: &OutboxItem, _verdict: &Verdict) {}

    /// Called once shutdown is seen, before the entries in flight are drained.
    fn stopping(&self) {}
}

/// Counts of what the loop did, for metrics and tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub claimed: AtomicU64,
    pub acked: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
    pub left: AtomicU64,
    pub unavailable: AtomicU64,
    /// Claims, flushes, acks, retries or dead-letters the store refused.
    pub store_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The seqs of entries being run right now.
type InFlight = Arc<Mutex<HashSet<u64>>>;

/// Entries marked in flight, unmarked on drop (also when their task panics or is aborted).
struct Marks(InFlight, Vec<u64>);

impl Drop for Marks {
    fn drop(&mut self) {
        let mut busy = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for seq in &self.1 {
            busy.remove(seq);
        }
    }
}

/// The loop for one topic; [`ConsumerLoop::run`] drives it until shutdown.
pub struct ConsumerLoop<C: Consumer> {
    store: Store,
    consumer: Arc<C>,
    opts: LoopOptions,
    stats: Arc<ConsumerStats>,
    in_flight: InFlight,
}

impl<C: Consumer> ConsumerLoop<C> {
    pub fn new(store: Store, consumer: Arc<C>, opts: LoopOptions) -> ConsumerLoop<C> {
        ConsumerLoop {
            store,
            consumer,
            opts,
            stats: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Runs until the shutdown signal, then lets what is in flight finish (up to
    /// [`LoopOptions::drain`]); what does not stays leased and is claimed again later.
    pub async fn run(self, mut signal: Signal) {
        let bell = self.store.outbox_bell(self.opts.topic);
        let mut tasks = JoinSet::new();
        match self.opts.shape {
            Shape::Batch(n) => self.run_batches(n.max(1), &bell, &mut signal).await,
            Shape::Each(n) => {
                self.run_each(n.max(1), &bell, &mut signal, &mut tasks)
                    .await
            }
        }
        self.consumer.stopping();
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.opts.drain, drain).await.is_err() {
            tasks.abort_all();
        }
    }

    async fn run_batches(&self, n: usize, bell: &Notify, signal: &mut Signal) {
        let mut held: Option<(Vec<OutboxItem>, Marks)> = None;
        let mut failures = 0u32;
        while !signal.is_triggered() {
            if held.is_none() {
                self.consumer.before_claim().await;
                let items = self.claim(n);
                if items.is_empty() {
                    self.consumer.idle();
                    if !pause(signal, self.opts.poll, Some(bell)).await {
                        return;
                    }
                    continue;
                }
                let marks = self.marks(&items);
                held = Some((items, marks));
            }
            let Some((items, _)) = &held else { continue };
            match self.run_batch(items).await {
                Ok(()) => {
                    failures = 0;
                    held = None;
                }
                Err(Unavailable(why)) => {
                    // Backing off: only the timer wakes the loop, not new work.
                    let d = self.opts.unavailable_backoff(failures);
                    failures = failures.saturating_add(1);
                    bump(&self.stats.unavailable);
                    tracing::warn!(topic = self.opts.topic, error = %why, retry_in = ?d, "outbox consumer unavailable; keeping its batch");
                    if !pause(signal, d, None).await {
                        return;
                    }
                }
            }
        }
    }

    /// Runs a held batch and settles it; `Err` keeps it held.
    async fn run_batch(&self, items: &[OutboxItem]) -> Result<(), Unavailable> {
        if self.opts.flush.before_run {
            self.store
                .flushed()
                .await
                .map_err(|e| Unavailable(format!("flushing before running: {e}")))?;
        }
        let verdicts = self.consumer.run(items).await?;
        settle_all(
            &self.store,
            &*self.consumer,
            &self.opts,
            &self.stats,
            items,
            verdicts,
        )
        .await;
        Ok(())
    }

    async fn run_each(
        &self,
        slots: usize,
        bell: &Notify,
        signal: &mut Signal,
        tasks: &mut JoinSet<()>,
    ) {
        let free = Arc::new(Semaphore::new(slots));
        loop {
            while tasks.try_join_next().is_some() {}
            let first = tokio::select! {
                p = free.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = signal.recv() => return,
            };
            let mut permits = vec![first];
            while let Ok(p) = free.clone().try_acquire_owned() {
                permits.push(p);
            }
            self.consumer.before_claim().await;
            let items = self.claim(permits.len());
            if items.is_empty() {
                drop(permits);
                self.consumer.idle();
                if !pause(signal, self.opts.poll, Some(bell)).await {
                    return;
                }
                continue;
            }
            if self.opts.flush.before_run {
                if let Err(e) = self.store.flushed().await {
                    bump(&self.stats.store_errors);
                    tracing::warn!(topic = self.opts.topic, error = %e, "flushing before running failed; retrying after the lease");
                    drop(self.marks(&items));
                    drop(permits);
                    if !pause(signal, self.opts.poll, None).await {
                        return;
                    }
                    continue;
                }
            }
            // Each task owns its entry's mark: dropped when the task ends, panics or is
            // aborted, so the entry can be claimed and run again after its lease.
            for (item, permit) in items.into_iter().zip(permits) {
                let mark = self.marks(std::slice::from_ref(&item));
                self.spawn_one(tasks, item, mark, permit);
            }
        }
    }

    fn spawn_one(
        &self,
        tasks: &mut JoinSet<()>,
        item: OutboxItem,
        mark: Marks,
        permit: OwnedSemaphorePermit,
    ) {
        let store = self.store.clone();
        let consumer = self.consumer.clone();
        let opts = self.opts.clone();
        let stats = self.stats.clone();
        tasks.spawn(async move {
            let _mark = mark;
            let items = std::slice::from_ref(&item);
            match consumer.run(items).await {
                Ok(verdicts) => settle_all(&store, &*consumer, &opts, &stats, items, verdicts).await,
                Err(Unavailable(why)) => {
                    bump(&stats.unavailable);
                    bump(&stats.left);
                    tracing::warn!(topic = opts.topic, seq = item.seq, error = %why, "outbox consumer unavailable; the entry is run again after its lease");
                }
            }
            drop(permit);
        });
    }

    /// The guard that unmarks `items` (marked by [`ConsumerLoop::claim`]).
    fn marks(&self, items: &[OutboxItem]) -> Marks {
        Marks(
            self.in_flight.clone(),
            items.iter().map(|i| i.seq).collect(),
        )
    }

    /// Claims up to `n` ready entries not already in flight here, and marks them; the
    /// caller takes the marks' guard at once with [`ConsumerLoop::marks`].
    fn claim(&self, n: usize) -> Vec<OutboxItem> {
        let now = Utc::now();
        let items = match self.store.claim(self.opts.topic, n, self.opts.lease, now) {
            Ok(items) => items,
            Err(e) => {
                bump(&self.stats.store_errors);
                tracing::warn!(topic = self.opts.topic, error = %e, "claiming from the outbox failed");
                Vec::new()
            }
        };
        let mut busy = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // An entry still running here whose lease ran out was just claimed again: running
        // that second copy too would deliver it twice.
        let items: Vec<_> = items.into_iter().filter(|i| busy.insert(i.seq)).collect();
        drop(busy);
        self.stats
            .claimed
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        items
    }
}

/// Flushes (as asked), then settles each item by its verdict.
async fn settle_all<C: Consumer>(
    store: &Store,
    consumer: &C,
    opts: &LoopOptions,
    stats: &ConsumerStats,
    items: &[OutboxItem],
    verdicts: Vec<Verdict>,
) {
    let topic = opts.topic;
    if verdicts.len() != items.len() {
        tracing::error!(
            topic,
            items = items.len(),
            verdicts = verdicts.len(),
            "outbox consumer returned a verdict count that does not match its batch"
        );
    }
    if opts.flush.before_settle {
        if let Err(e) = store.flushed().await {
            bump(&stats.store_errors);
            stats.left.fetch_add(items.len() as u64, Ordering::Relaxed);
            tracing::warn!(topic, error = %e, "flushing before acknowledging failed; the batch runs again after its lease");
            return;
        }
    }
    let mut verdicts = verdicts.into_iter();
    for item in items {
        let verdict = verdicts.next().unwrap_or(Verdict::Leave);
        settle(store, topic, stats, item, &verdict);
        consumer.settled(item, &verdict);
    }
    if opts.flush.after_settle {
        if let Err(e) = store.flushed().await {
            bump(&stats.store_errors);
            tracing::warn!(topic, error = %e, "flushing outbox acknowledgements failed");
        }
    }
}

/// Acks, retries or dead-letters one entry; every store result is counted and logged.
fn settle(store: &Store, topic: &str, stats: &ConsumerStats, item: &OutboxItem, v: &Verdict) {
    let (seq, key) = (item.seq, item.key.as_str());
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        bump(&stats.store_errors);
        tracing::warn!(topic, seq, key, error = %e, "{what} an outbox entry failed; it is claimed again after its lease");
    };
    match v {
        Verdict::Done => match store.ack(topic, seq) {
            Ok(true) => bump(&stats.acked),
            Ok(false) => tracing::debug!(topic, seq, key, "acked entry was already settled"),
            Err(e) => failed("acknowledging", &e),
        },
        Verdict::Retry(why) => match store.retry(topic, seq, why, Utc::now()) {
            Ok(RetryOutcome::Scheduled { at }) => {
                bump(&stats.retried);
                tracing::info!(topic, seq, key, error = %why, %at, "outbox entry will be retried");
            }
            Ok(RetryOutcome::Dead) => {
                bump(&stats.dead);
                tracing::warn!(topic, seq, key, error = %why, "outbox entry dead-lettered after its last attempt");
            }
            Ok(RetryOutcome::Missing) => {
                tracing::debug!(topic, seq, key, "retried entry was already settled")
            }
            Err(e) => failed("retrying", &e),
        },
        Verdict::Dead(why) => match store.dead_letter(topic, seq, why, Utc::now()) {
            Ok(true) => {
                bump(&stats.dead);
                tracing::warn!(topic, seq, key, reason = %why, "outbox entry dead-lettered");
            }
            Ok(false) => {
                tracing::debug!(topic, seq, key, "dead-lettered entry was already settled")
            }
            Err(e) => failed("dead-lettering", &e),
        },
        Verdict::Leave => bump(&stats.left),
    }
}

/// Sleeps `d`, or until the bell rings (when given); false once shutdown is signalled.
async fn pause(signal: &mut Signal, d: Duration, bell: Option<&Notify>) -> bool {
    let rung = async {
        match bell {
            Some(b) => b.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = rung => true,
        _ = signal.recv() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    const TOPIC: &str = "test.loop";

    /// Judges an entry by its payload; fails as unavailable `unavailable` times first.
    #[derive(Default)]
    struct Scripted {
        runs: Mutex<Vec<Vec<(String, u32)>>>,
        unavailable: AtomicU64,
        delay: Duration,
    }

    impl Consumer for Scripted {
        async fn run(&self, items: &[OutboxItem]) -> Result<Vec<Verdict>, Unavailable> {
            let seen = items.iter().map(|i| (i.key.clone(), i.attempts)).collect();
            self.runs.lock().unwrap().push(seen);
            tokio::time::sleep(self.delay).await;
            let left = self.unavailable.load(Ordering::SeqCst);
            if left > 0 {
                self.unavailable.store(left - 1, Ordering::SeqCst);
                return Err(Unavailable("peer down".into()));
            }
            Ok(items
                .iter()
                .map(|i| match i.payload.as_slice() {
                    b"retry" => Verdict::Retry("busy".into()),
                    b"dead" => Verdict::Dead("refused".into()),
                    b"leave" => Verdict::Leave,
                    _ => Verdict::Done,
                })
                .collect())
        }
    }

    fn opts(shape: Shape) -> LoopOptions {
        LoopOptions {
            shape,
            unavailable_base: Duration::from_millis(10),
            unavailable_cap: Duration::from_millis(20),
            ..LoopOptions::new(TOPIC, Duration::from_secs(30), Duration::from_millis(10))
        }
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn each_verdict_settles_its_entry_and_is_counted() {
        let store = Store::open_temporary().unwrap();
        for (k, p) in [("a", "ok"), ("b", "retry"), ("c", "dead"), ("d", "leave")] {
            store.outbox_push(TOPIC, k, p.as_bytes()).unwrap();
        }
        let consumer = Arc::new(Scripted::default());
        let shutdown = Shutdown::new();
        let l = ConsumerLoop::new(store.clone(), consumer.clone(), opts(Shape::Batch(10)));
        let stats = l.stats();
        let task = tokio::spawn(l.run(shutdown.signal()));
        until("settled", || get(&stats.left) == 1).await;
        shutdown.drain().await;
        task.await.unwrap();
        assert_eq!(consumer.runs.lock().unwrap().len(), 1, "one batch");
        assert_eq!(get(&stats.claimed), 4);
        assert_eq!(
            (get(&stats.acked), get(&stats.retried), get(&stats.dead)),
            (1, 1, 1)
        );
        assert_eq!(get(&stats.store_errors), 0);
        // b waits for its retry, d for its lease; c is dead with its reason; a is gone.
        assert_eq!(store.pending_count(TOPIC).unwrap(), 2);
        let dead = store.dead(TOPIC).unwrap();
        assert_eq!(
            (dead[0].key.as_str(), dead[0].last_error.as_str()),
            ("c", "refused")
        );
    }

    #[tokio::test]
    async fn an_unavailable_consumer_gets_the_same_batch_again_and_nothing_newer() {
        let store = Store::open_temporary().unwrap();
        store.outbox_push(TOPIC, "a", b"ok").unwrap();
        let consumer = Arc::new(Scripted {
            unavailable: AtomicU64::new(3),
            ..Scripted::default()
        });
        let shutdown = Shutdown::new();
        let l = ConsumerLoop::new(store.clone(), consumer.clone(), opts(Shape::Batch(10)));
        let stats = l.stats();
        let task = tokio::spawn(l.run(shutdown.signal()));
        until("first run", || !consumer.runs.lock().unwrap().is_empty()).await;
        store.outbox_push(TOPIC, "b", b"ok").unwrap();
        until("both acked", || get(&stats.acked) == 2).await;
        shutdown.drain().await;
        task.await.unwrap();
        let runs = consumer.runs.lock().unwrap().clone();
        let a = vec![("a".to_string(), 1)];
        // The held batch ran four times as claimed once (no attempt counted), then b.
        assert_eq!(
            runs,
            [a.clone(), a.clone(), a.clone(), a, vec![("b".into(), 1)]]
        );
        assert_eq!(get(&stats.unavailable), 3);
        assert_eq!(store.pending_count(TOPIC).unwrap(), 0);
    }

    #[tokio::test]
    async fn each_mode_runs_entries_side_by_side_and_never_one_twice() {
        let store = Store::open_temporary().unwrap();
        for k in ["a", "b", "c", "d", "e"] {
            store.outbox_push(TOPIC, k, b"ok").unwrap();
        }
        // Runs outlast their lease: a claim in between gets them again, and must not run
        // them a second time while they are in flight.
        let consumer = Arc::new(Scripted {
            delay: Duration::from_millis(150),
            ..Scripted::default()
        });
        let o = LoopOptions {
            lease: Duration::from_millis(20),
            ..opts(Shape::Each(2))
        };
        let shutdown = Shutdown::new();
        let l = ConsumerLoop::new(store.clone(), consumer.clone(), o);
        let stats = l.stats();
        let task = tokio::spawn(l.run(shutdown.signal()));
        until("all acked", || get(&stats.acked) == 5).await;
        shutdown.drain().await;
        task.await.unwrap();
        let runs = consumer.runs.lock().unwrap().clone();
        assert!(runs.iter().all(|r| r.len() == 1), "one entry per run");
        let mut keys: Vec<_> = runs.iter().map(|r| r[0].0.clone()).collect();
        keys.sort();
        assert_eq!(keys, ["a", "b", "c", "d", "e"], "each ran once");
        assert_eq!(store.pending_count(TOPIC).unwrap(), 0);
    }

    #[tokio::test]
    async fn a_push_rings_an_idle_loop_awake_before_its_poll() {
        let store = Store::open_temporary().unwrap();
        let consumer = Arc::new(Scripted::default());
        let o = LoopOptions {
            poll: Duration::from_secs(60),
            ..opts(Shape::Batch(10))
        };
        let shutdown = Shutdown::new();
        let l = ConsumerLoop::new(store.clone(), consumer.clone(), o);
        let stats = l.stats();
        let task = tokio::spawn(l.run(shutdown.signal()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.outbox_push(TOPIC, "a", b"ok").unwrap();
        until("acked", || get(&stats.acked) == 1).await;
        // Shutdown ends the idle wait at once.
        tokio::time::timeout(Duration::from_secs(2), shutdown.drain())
            .await
            .expect("stopped");
        task.await.unwrap();
    }
}
