//! One bind to the SMSC, for as long as the process runs: connect, bind as SMPP 3.4, keep
//! the link alive, submit within the window, answer what the SMSC sends, and reconnect with
//! exponential backoff and jitter when the link drops.
//!
//! Owns: the TCP connection, sequence numbers, the in-flight table (the window), the
//! throttle pause (exponential with jitter, capped, reset by an accepted submit),
//! enquire_link keepalive and timeout.
//! Must never: lose a submit (every job leaves with Accepted, Rejected, Invalid or Requeue),
//! block on the store (MO handling runs in its own task and answers through a channel), or
//! drop the bind for one undecodable PDU.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::metrics::{inc, BindInfo};
use super::pdu::{self, status, BindKind, Inbound, Outbound};
use super::{fields, mo, Job, Shared, SubmitOutcome};
use crate::shutdown::Signal;

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("bind refused with status 0x{0:08x}")]
    BindRefused(u32),
    #[error("no bind response")]
    BindTimeout,
    #[error("link: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame: {0}")]
    Frame(#[from] pdu::FrameError),
    #[error("encode: {0}")]
    Encode(#[from] pdu::EncodeError),
}

/// How a bound session ended.
enum End {
    /// Shutdown: unbound cleanly.
    Stopped,
    /// The SMSC unbound, closed, or stopped answering.
    Dropped(&'static str),
}

/// Runs bind `index` until shutdown.
pub(crate) async fn run_bind(shared: Arc<Shared>, index: usize, kind: BindKind, mut stop: Signal) {
    let s = &shared.settings;
    let mut backoff = s.reconnect_min;
    let mut bound_before = false;
    loop {
        report(&shared, index, kind, "connecting", 0);
        match serve(&shared, index, kind, &mut stop, &mut bound_before).await {
            Ok(End::Stopped) => break,
            Ok(End::Dropped(why)) => {
                tracing::warn!(bind = index, why, "bind dropped; reconnecting");
                backoff = s.reconnect_min;
            }
            Err(e) => {
                inc(&shared.metrics.bind_failures);
                tracing::warn!(bind = index, error = %e, ?backoff, "bind failed; retrying");
            }
        }
        report(&shared, index, kind, "down", 0);
        if stop.is_triggered() {
            break;
        }
        // Full jitter on top of the base, so that several binds do not reconnect in step.
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        let wait = backoff + Duration::from_millis(jitter);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.recv() => break,
        }
        backoff = (backoff * 2).min(s.reconnect_max);
    }
    report(&shared, index, kind, "stopped", 0);
}

fn report(shared: &Shared, index: usize, kind: BindKind, state: &'static str, in_flight: usize) {
    shared.metrics.set_bind(BindInfo {
        index,
        kind: kind.name(),
        state,
        in_flight,
    });
}

struct InFlight {
    job: Job,
    sent: Instant,
}

struct Link {
    w: OwnedWriteHalf,
    next_seq: u32,
}

impl Link {
    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        // Sequence numbers live in 1..=0x7FFFFFFF (SMPP 3.4 §5.1.4).
        self.next_seq = if s >= 0x7fff_ffff { 1 } else { s + 1 };
        s
    }

    async fn send(&mut self, out: &Outbound, seq: u32) -> Result<(), SessionError> {
        let bytes = pdu::encode(out, seq)?;
        self.w.write_all(&bytes).await?;
        Ok(())
    }
}

async fn serve(
    shared: &Arc<Shared>,
    index: usize,
    kind: BindKind,
    stop: &mut Signal,
    bound_before: &mut bool,
) -> Result<End, SessionError> {
    let s = &shared.settings;
    let addr = format!("{}:{}", s.host, s.port);
    let tcp = match tokio::time::timeout(s.response_timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(SessionError::Connect(e)),
        Err(_) => return Err(SessionError::ConnectTimeout),
    };
    let _ = tcp.set_nodelay(true);
    let (mut r, w) = tcp.into_split();
    let (frames_tx, mut frames) = mpsc::channel::<Result<Vec<u8>, pdu::FrameError>>(256);
    let max = s.max_pdu_bytes;
    // read_frame is not cancel-safe, so it gets its own task rather than a select! branch.
    let reader = tokio::spawn(async move {
        loop {
            let f = pdu::read_frame(&mut r, max).await;
            let end = f.is_err();
            if frames_tx.send(f).await.is_err() || end {
                break;
            }
        }
    });
    let _abort = AbortOnDrop(reader);
    let mut link = Link { w, next_seq: 1 };
    let bind_seq = link.seq();
    let bind = Outbound::Bind {
        kind,
        system_id: s.system_id.clone(),
        password: s.password.clone(),
    };
    link.send(&bind, bind_seq).await?;
    let deadline = Instant::now() + s.response_timeout;
    loop {
        let f = match tokio::time::timeout_at(deadline, frames.recv()).await {
            Ok(Some(f)) => f?,
            Ok(None) => return Err(SessionError::BindTimeout),
            Err(_) => return Err(SessionError::BindTimeout),
        };
        match pdu::decode(&f) {
            Inbound::BindResp { status: 0, .. } => break,
            Inbound::BindResp { status, .. } => return Err(SessionError::BindRefused(status)),
            Inbound::EnquireLink { seq } => link.send(&Outbound::EnquireLinkResp, seq).await?,
            _ => {}
        }
    }
    if *bound_before {
        inc(&shared.metrics.rebinds);
    }
    *bound_before = true;
    shared.metrics.binds_up.fetch_add(1, Ordering::Relaxed);
    tracing::info!(bind = index, kind = kind.name(), %addr, "bound (SMPP 3.4)");
    report(shared, index, kind, "bound", 0);
    let mut st = Bound {
        shared: shared.clone(),
        index,
        kind,
        link,
        in_flight: HashMap::new(),
        retry: VecDeque::new(),
        paused_until: None,
        throttle_streak: 0,
        enquire_sent: None,
    };
    let end = st.run(&mut frames, stop).await;
    shared.metrics.binds_up.fetch_sub(1, Ordering::Relaxed);
    st.requeue_all();
    end
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Bound {
    shared: Arc<Shared>,
    index: usize,
    kind: BindKind,
    link: Link,
    in_flight: HashMap<u32, InFlight>,
    /// Throttled jobs, sent again before anything new.
    retry: VecDeque<Job>,
    paused_until: Option<Instant>,
    /// Throttled answers in a row (each after the previous pause ended).
    throttle_streak: u32,
    enquire_sent: Option<Instant>,
}

impl Bound {
    fn can_send(&self) -> bool {
        self.kind.can_submit()
            && self.in_flight.len() < self.shared.settings.window
            && self.paused_until.is_none_or(|t| t <= Instant::now())
    }

    async fn run(
        &mut self,
        frames: &mut mpsc::Receiver<Result<Vec<u8>, pdu::FrameError>>,
        stop: &mut Signal,
    ) -> Result<End, SessionError> {
        let s = self.shared.settings.clone();
        let (resp_tx, mut resp_rx) = mpsc::channel::<(u32, Outbound)>(256);
        let mut keepalive = tokio::time::interval(s.enquire_link);
        keepalive.reset();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            if self.can_send() {
                if let Some(job) = self.retry.pop_front() {
                    self.submit(job).await?;
                    continue;
                }
            }
            let take_new = self.can_send() && self.retry.is_empty();
            let pause = self.paused_until;
            tokio::select! {
                f = frames.recv() => {
                    let f = match f {
                        Some(Ok(f)) => f,
                        Some(Err(e)) => return Err(e.into()),
                        None => return Ok(End::Dropped("connection closed")),
                    };
                    if let Some(end) = self.on_frame(&f, &resp_tx).await? {
                        return Ok(end);
                    }
                }
                job = next_job(&self.shared), if take_new => {
                    if let Some(job) = job {
                        self.shared.bucket.take().await;
                        self.submit(job).await?;
                    }
                }
                Some((seq, out)) = resp_rx.recv() => self.link.send(&out, seq).await?,
                _ = sleep_until(pause), if pause.is_some() => self.paused_until = None,
                _ = keepalive.tick() => {
                    if self.enquire_sent.is_none() {
                        let seq = self.link.seq();
                        self.link.send(&Outbound::EnquireLink, seq).await?;
                        self.enquire_sent = Some(Instant::now());
                    }
                }
                _ = tick.tick() => {
                    if self.enquire_sent.is_some_and(|t| t.elapsed() > s.response_timeout) {
                        return Ok(End::Dropped("enquire_link timed out"));
                    }
                    self.expire_in_flight(s.response_timeout);
                    report(&self.shared, self.index, self.kind, "bound", self.in_flight.len());
                }
                _ = stop.recv() => return self.unbind(frames, &resp_tx, &mut resp_rx).await,
            }
        }
    }

    fn paused(&self) -> bool {
        self.paused_until.is_some_and(|t| t > Instant::now())
    }

    /// An ESME_RTHROTTLED / ESME_RMSGQFUL: pause the bind, longer with each one in a row.
    /// Answers to submits sent before the pause began are the same episode, not a new one.
    fn throttled(&mut self, status: u32) {
        if self.paused() {
            return;
        }
        let s = &self.shared.settings;
        self.throttle_streak = self.throttle_streak.saturating_add(1);
        let base = throttle_base(s.throttle_pause, s.throttle_pause_max, self.throttle_streak);
        let pause = with_jitter(base, rand::thread_rng().gen_range(0.0..1.0));
        let gauge = &self.shared.metrics.throttle_pause_ms;
        gauge.store(base.as_millis() as i64, Ordering::Relaxed);
        tracing::info!(
            bind = self.index,
            status,
            ?pause,
            streak = self.throttle_streak,
            "SMSC throttling; pausing bind"
        );
        self.paused_until = Some(Instant::now() + pause);
    }

    /// An accepted submit after the pause: the next throttle starts from the first pause.
    fn throttle_ended(&mut self) {
        if self.throttle_streak > 0 && !self.paused() {
            self.throttle_streak = 0;
            let gauge = &self.shared.metrics.throttle_pause_ms;
            gauge.store(0, Ordering::Relaxed);
        }
    }

    async fn submit(&mut self, job: Job) -> Result<(), SessionError> {
        let seq = self.link.seq();
        let bytes = match pdu::encode(&Outbound::Submit(job.req.clone()), seq) {
            Ok(b) => b,
            Err(e) => {
                let _ = job.reply.send(SubmitOutcome::Invalid(e.to_string()));
                return Ok(());
            }
        };
        self.in_flight.insert(
            seq,
            InFlight {
                job,
                sent: Instant::now(),
            },
        );
        self.shared
            .metrics
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        inc(&self.shared.metrics.submit_sm_sent);
        self.link.w.write_all(&bytes).await?;
        Ok(())
    }

    fn take(&mut self, seq: u32) -> Option<Job> {
        let f = self.in_flight.remove(&seq)?;
        self.shared
            .metrics
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
        Some(f.job)
    }

    async fn on_frame(
        &mut self,
        f: &[u8],
        resp_tx: &mpsc::Sender<(u32, Outbound)>,
    ) -> Result<Option<End>, SessionError> {
        match pdu::decode(f) {
            Inbound::SubmitResp {
                seq,
                status,
                message_id,
            } => {
                let Some(job) = self.take(seq) else {
                    tracing::debug!(seq, "submit_sm_resp for no request (late, after a timeout)");
                    return Ok(None);
                };
                match status {
                    status::OK => {
                        self.throttle_ended();
                        let _ = job.reply.send(SubmitOutcome::Accepted(message_id));
                    }
                    status::THROTTLED | status::MSGQFUL => {
                        inc(&self.shared.metrics.throttled);
                        self.throttled(status);
                        self.retry.push_back(job);
                    }
                    status::INVBNDSTS => {
                        inc(&self.shared.metrics.requeued);
                        let _ = job.reply.send(SubmitOutcome::Requeue);
                    }
                    other => {
                        let _ = job.reply.send(SubmitOutcome::Rejected(other));
                    }
                }
            }
            Inbound::Deliver { seq, msg } => {
                let shared = self.shared.clone();
                let tx = resp_tx.clone();
                tokio::spawn(async move {
                    let data_sm = msg.data_sm;
                    let status = mo::handle(&shared, msg).await;
                    let out = if data_sm {
                        Outbound::DataResp { status }
                    } else {
                        Outbound::DeliverResp { status }
                    };
                    let _ = tx.send((seq, out)).await;
                });
            }
            Inbound::EnquireLink { seq } => self.link.send(&Outbound::EnquireLinkResp, seq).await?,
            Inbound::EnquireLinkResp { .. } => self.enquire_sent = None,
            Inbound::Unbind { seq } => {
                self.link.send(&Outbound::UnbindResp, seq).await?;
                let _ = self.link.w.shutdown().await;
                return Ok(Some(End::Dropped("SMSC unbound")));
            }
            Inbound::UnbindResp { .. } => return Ok(Some(End::Dropped("unbind_resp"))),
            Inbound::GenericNack { seq, status } => {
                if let Some(job) = self.take(seq) {
                    let _ = job.reply.send(SubmitOutcome::Rejected(status));
                }
            }
            Inbound::Undecodable {
                seq,
                command_id,
                error,
            } if command_id == fields::DELIVER_SM || command_id == fields::DATA_SM => {
                // Framed, but a field is wrong: the PDU's own response with that field's
                // status, so the SMSC neither redelivers it for ever nor loses it unseen.
                let bad =
                    fields::field_error(command_id, f.get(pdu::HEADER_LEN..).unwrap_or_default());
                inc(&self.shared.metrics.field_errors);
                tracing::warn!(bind = self.index, seq, command_id, field = bad.field, status = bad.status, %error, "PDU with an invalid field; refused with its status");
                let out = if command_id == fields::DATA_SM {
                    Outbound::DataResp { status: bad.status }
                } else {
                    Outbound::DeliverResp { status: bad.status }
                };
                self.link.send(&out, seq).await?;
            }
            Inbound::Undecodable {
                seq,
                command_id,
                error,
            } => {
                inc(&self.shared.metrics.generic_nacks_sent);
                tracing::warn!(bind = self.index, seq, command_id, %error, "undecodable PDU; generic_nack");
                let nack = Outbound::GenericNack {
                    status: status::INVCMDLEN,
                };
                self.link.send(&nack, seq).await?;
            }
            Inbound::Other {
                seq, command_id, ..
            } => {
                if command_id & pdu::GENERIC_NACK == 0 {
                    // A request we do not implement: ESME_RINVCMDID.
                    self.link
                        .send(&Outbound::GenericNack { status: 0x03 }, seq)
                        .await?;
                }
            }
            Inbound::BindResp { .. } => {}
        }
        Ok(None)
    }

    /// Requests unanswered past the timeout may or may not have reached the SMSC: send
    /// them again (a possible duplicate, bounded by the window) rather than lose them.
    fn expire_in_flight(&mut self, timeout: Duration) {
        let late: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.sent.elapsed() > timeout)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in late {
            if let Some(job) = self.take(seq) {
                inc(&self.shared.metrics.requeued);
                let _ = job.reply.send(SubmitOutcome::Requeue);
            }
        }
    }

    fn requeue_all(&mut self) {
        let seqs: Vec<u32> = self.in_flight.keys().copied().collect();
        for seq in seqs {
            if let Some(job) = self.take(seq) {
                inc(&self.shared.metrics.requeued);
                let _ = job.reply.send(SubmitOutcome::Requeue);
            }
        }
        for job in self.retry.drain(..) {
            let _ = job.reply.send(SubmitOutcome::Requeue);
        }
    }

    /// Shutdown: let in-flight requests be answered (briefly), then unbind.
    async fn unbind(
        &mut self,
        frames: &mut mpsc::Receiver<Result<Vec<u8>, pdu::FrameError>>,
        resp_tx: &mpsc::Sender<(u32, Outbound)>,
        resp_rx: &mut mpsc::Receiver<(u32, Outbound)>,
    ) -> Result<End, SessionError> {
        let grace = Instant::now() + Duration::from_secs(2);
        while !self.in_flight.is_empty() && Instant::now() < grace {
            tokio::select! {
                Some(Ok(f)) = frames.recv() => { self.on_frame(&f, resp_tx).await?; }
                Some((seq, out)) = resp_rx.recv() => self.link.send(&out, seq).await?,
                _ = tokio::time::sleep_until(grace) => break,
            }
        }
        let seq = self.link.seq();
        self.link.send(&Outbound::Unbind, seq).await?;
        let until = Instant::now() + Duration::from_secs(1);
        while let Ok(Some(Ok(f))) = tokio::time::timeout_at(until, frames.recv()).await {
            if matches!(pdu::decode(&f), Inbound::UnbindResp { .. }) {
                break;
            }
        }
        let _ = self.link.w.shutdown().await;
        tracing::info!(bind = self.index, "unbound");
        Ok(End::Stopped)
    }
}

/// The pause after the `streak`th throttled answer in a row (from 1): `first`, doubled
/// for each one before it, at most `max`.
pub fn throttle_base(first: Duration, max: Duration, streak: u32) -> Duration {
    let doublings = streak.saturating_sub(1).min(31);
    first.saturating_mul(1 << doublings).min(max)
}

/// `base` less up to a quarter, by `r` in [0, 1): binds (and gateways) throttled together
/// do not all come back in the same millisecond, and the pause never exceeds the cap.
pub fn with_jitter(base: Duration, r: f64) -> Duration {
    base.mul_f64(1.0 - 0.25 * r.clamp(0.0, 1.0))
}

async fn next_job(shared: &Shared) -> Option<Job> {
    shared.jobs_rx.lock().await.recv().await
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_pause_doubles_to_the_cap_and_jitter_only_shortens_it() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let ms = |n| throttle_base(first, max, n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(5), ms(6), ms(7)],
            [1000, 2000, 4000, 16000, 30000, 30000]
        );
        assert_eq!(ms(0), 1000, "a streak of 0 is treated as the first");
        assert_eq!(ms(u32::MAX), 30000, "no overflow however long the streak");
        let b = Duration::from_millis(800);
        assert_eq!(with_jitter(b, 0.0), b);
        assert_eq!(with_jitter(b, 0.5), Duration::from_millis(700));
        assert_eq!(
            with_jitter(b, 7.0),
            Duration::from_millis(600),
            "r is clamped"
        );
    }
}
