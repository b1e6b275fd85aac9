//! The officer MO flow over SMPP: the loadtest is the SMSC. The gateway binds to it as an
//! ESME (bind_transceiver, or a transmitter/receiver pair); we answer binds, enquire_link
//! and every submit_sm, send officer commands as deliver_sm MOs, and time each MO until
//! the first submit_sm that carries its reply to the same phone.
//!
//! Matching is by destination phone, so each officer phone has at most one MO waiting for
//! its reply (one worker per officer). Parts 2.. of a concatenated reply are not replies;
//! any other MT (payment confirmations, replies to the HTTP officer flow) is counted apart.
//! An MO without a reply within `smsc_reply_timeout_ms` is an error ("missing reply"), and
//! so is every one still waiting when the run ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::report::Recorder;
use crate::smsc_pdu::{self as pdu, FromEsme, Inbound};
use crate::Plan;

/// One bound connection we can deliver MOs on.
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    receives: bool,
}

/// The SMSC's shared state.
pub struct Smsc {
    conns: Mutex<Vec<Conn>>,
    bound: Notify,
    /// Officer phone → when its MO went out, and who waits for the reply.
    pending: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    seq: AtomicU32,
    next_conn: AtomicU64,
    next_message_id: AtomicU64,
    round_robin: AtomicUsize,
    pub rec: Arc<Recorder>,
}

impl Smsc {
    /// Listens on `addr`; connections are served until the process ends.
    pub async fn listen(addr: SocketAddr, rec: Arc<Recorder>) -> anyhow::Result<Arc<Smsc>> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("SMSC cannot listen on {addr}: {e}"))?;
        let smsc = Arc::new(Smsc {
            conns: Mutex::new(Vec::new()),
            bound: Notify::new(),
            pending: Mutex::new(HashMap::new()),
            seq: AtomicU32::new(1),
            next_conn: AtomicU64::new(1),
            next_message_id: AtomicU64::new(1),
            round_robin: AtomicUsize::new(0),
            rec,
        });
        let s = smsc.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(s.clone().serve(stream));
            }
        });
        Ok(smsc)
    }

    fn receivers(&self) -> usize {
        self.conns
            .lock()
            .map(|c| c.iter().filter(|c| c.receives).count())
            .unwrap_or(0)
    }

    /// Waits until the gateway has bound a connection that receives MOs.
    pub async fn wait_bound(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.bound.notified();
            if self.receivers() > 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.receivers() > 0;
            }
        }
    }

    async fn serve(self: Arc<Self>, stream: TcpStream) {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Whatever queued meanwhile goes out in the same write.
                let mut buf = first;
                while let Ok(more) = rx.try_recv() {
                    buf.extend_from_slice(&more);
                }
                if wr.write_all(&buf).await.is_err() {
                    break;
                }
            }
        });
        loop {
            let frame = match pdu::read_frame(&mut rd).await {
                Ok(f) => f,
                Err(pdu::FrameError::Io(_)) => break,
                Err(e) => {
                    self.rec.error(format!("smsc: {e}"));
                    break;
                }
            };
            let at = Instant::now();
            match pdu::decode(&frame) {
                FromEsme::Bind {
                    seq, command_id, ..
                } => {
                    let _ = tx.send(pdu::bind_resp(command_id, seq));
                    if let Ok(mut c) = self.conns.lock() {
                        c.push(Conn {
                            id: conn_id,
                            tx: tx.clone(),
                            receives: matches!(
                                command_id,
                                pdu::id::BIND_TRANSCEIVER | pdu::id::BIND_RECEIVER
                            ),
                        });
                    }
                    self.rec.note("binds", 1);
                    self.bound.notify_waiters();
                }
                FromEsme::Submit {
                    seq,
                    dest,
                    esm_class,
                    payload,
                    ..
                } => {
                    let mid = self.next_message_id.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send(pdu::submit_resp(seq, &format!("{mid:X}")));
                    self.on_mt(&dest, esm_class, &payload, at);
                }
                FromEsme::DeliverResp { status, .. } => {
                    if status != pdu::status::OK {
                        self.rec.error(format!("deliver_sm_resp 0x{status:08x}"));
                    }
                }
                FromEsme::Common(Inbound::EnquireLink { seq }) => {
                    let _ = tx.send(pdu::enquire_link_resp(seq));
                }
                FromEsme::Common(Inbound::EnquireLinkResp { .. } | Inbound::UnbindResp { .. }) => {}
                FromEsme::Common(Inbound::Unbind { seq }) => {
                    let _ = tx.send(pdu::unbind_resp(seq));
                    break;
                }
                FromEsme::Common(Inbound::GenericNack { status, .. }) => {
                    self.rec.error(format!("generic_nack 0x{status:08x}"));
                }
                FromEsme::Common(Inbound::Undecodable { seq, .. }) => {
                    self.rec.error("undecodable PDU from the gateway");
                    let _ = tx.send(pdu::generic_nack(seq, pdu::status::SYSERR));
                }
                // A response or a deliver_sm: what an SMSC sends, not what it is sent.
                FromEsme::Common(_) => {
                    let (command_id, seq) = (pdu::be32(&frame, 4), pdu::be32(&frame, 12));
                    self.rec
                        .error(format!("unexpected command 0x{command_id:08x}"));
                    let _ = tx.send(pdu::generic_nack(seq, pdu::status::INVCMDID));
                }
            }
        }
        if let Ok(mut c) = self.conns.lock() {
            c.retain(|c| c.id != conn_id);
        }
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    }

    /// A submit_sm: the reply to a waiting MO, a later part of one, or another MT.
    fn on_mt(&self, dest: &str, esm_class: u8, payload: &[u8], at: Instant) {
        self.rec.note("mt submit_sm", 1);
        if matches!(pdu::concat_part(esm_class, payload), Some((seq, _)) if seq != 1) {
            return;
        }
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(dest));
        match waiter {
            Some(w) => {
                let _ = w.send(at);
            }
            None => self.rec.note("mt to other phones", 1),
        }
    }

    /// Sends one MO; the receiver gets the time its reply's submit_sm arrived.
    fn send_mo(
        &self,
        from: &str,
        to: &str,
        text: &str,
    ) -> Result<oneshot::Receiver<Instant>, String> {
        let frame = pdu::deliver_sm(self.seq.fetch_add(1, Ordering::Relaxed), from, to, text)
            .map_err(|e| e.to_string())?;
        let (tx, rx) = oneshot::channel();
        let conns = self.conns.lock().map_err(|_| "smsc state poisoned")?;
        let receivers: Vec<&Conn> = conns.iter().filter(|c| c.receives).collect();
        if receivers.is_empty() {
            return Err("gateway not bound".into());
        }
        let conn = receivers[self.round_robin.fetch_add(1, Ordering::Relaxed) % receivers.len()];
        if let Ok(mut p) = self.pending.lock() {
            p.insert(from.to_string(), tx);
        }
        conn.tx
            .send(frame)
            .map_err(|_| "connection closed".to_string())?;
        Ok(rx)
    }

    fn forget(&self, phone: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(phone);
        }
    }
}

/// Phone of the `i`-th loadtest officer (`prepare` registers them).
pub fn officer_phone(i: u64) -> String {
    format!("2557599{:05}", i % 100_000)
}

pub struct SmscFlow {
    pub smsc: Arc<Smsc>,
    pub plan: Arc<Plan>,
    /// Per officer, the index of the last text sent (see [`SmscFlow::next_text`]).
    pub last_text: Vec<AtomicU64>,
}

impl SmscFlow {
    /// One MO from officer `worker`, and its reply.
    /// The gateway takes the same text from the same phone within its dedupe window for a
    /// redelivery (no second reply), also across runs on the same store. So each officer
    /// walks the distinct texts by wall-clock tenths of a second, never reusing one: a new
    /// run starts past where the last one ended, and `families × VARIANTS` tenths (30 min
    /// for 200 families) pass before a text comes round again.
    fn next_text(&self, worker: u64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_millis() / 100) as u64)
            .unwrap_or(0);
        let k = match self.last_text.get(worker as usize) {
            Some(last) => {
                let prev = last.load(Ordering::Relaxed);
                let k = now.max(prev + 1);
                last.store(k, Ordering::Relaxed);
                k
            }
            None => now,
        };
        crate::sms::mo_text_variant(&self.plan, k)
    }
}

impl crate::Flow for SmscFlow {
    async fn one(&self, worker: u64, _n: u64, _rng: &mut StdRng) {
        let p = &self.plan;
        let phone = officer_phone(worker);
        let text = self.next_text(worker);
        let rec = &self.smsc.rec;
        let sent = Instant::now();
        let rx = match self.smsc.send_mo(&phone, &p.short_code, &text) {
            Ok(rx) => rx,
            Err(e) => {
                rec.error(e);
                return;
            }
        };
        let limit = Duration::from_millis(p.smsc_reply_timeout_ms.max(1));
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(at)) => {
                rec.ok(at.saturating_duration_since(sent));
                rec.completed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(_)) => rec.error("missing reply (connection lost)"),
            Err(_) => {
                self.smsc.forget(&phone);
                rec.error("missing reply");
            }
        }
    }
}
