//! SMPP MT throughput: submit_sm per second through the durable SMS outbox into a local SMSC
//! peer (npm `smpp` 0.5.1, tests/smsc/smsc.js), against the same peer's rate with a minimal
//! loop on the same codec (our PDU adapter over one TCP connection, no store, no session
//! layer), at windows 10 and 100. The ratio is the cost of durability and the session layer;
//! the baseline is measured in the same run, against the same peer process.
//!
//! `cargo bench --bench smpp -- [--messages N] [--windows 10,100]`
//!
//! Needs node and `npm ci` in tests/smsc (run by .ci/run; the harness runs it if missing).
//! The outbox path: N SMS are queued in a fresh store, then the real pipeline
//! (`smpp::spawn`: claim with lease → submit within the window → ack after
//! submit_sm_resp → group-committed flush, then the slot is free) drains them; the clock runs from spawn
//! until the last SMS is acknowledged by the SMSC. No delivery receipts are requested.

#[path = "../tests/smsc/mod.rs"]
mod smsc;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imis_gateway::config::Config;
use imis_gateway::domain::{Language, Msisdn};
use imis_gateway::shutdown::Shutdown;
use imis_gateway::smpp::metrics::Metrics;
use imis_gateway::smpp::pdu::{self, BindKind, Inbound, Outbound, SubmitReq};
use imis_gateway::sms::{enqueue, OutboundSms, Templates};
use imis_gateway::store::{Store, StoreOptions, TxResult};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct Args {
    messages: usize,
    windows: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 20_000,
        windows: vec![10, 100],
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        match v[i].as_str() {
            "--messages" => {
                a.messages = v[i + 1].parse().expect("--messages N");
                i += 1;
            }
            "--windows" => {
                a.windows = v[i + 1]
                    .split(',')
                    .map(|w| w.parse().expect("--windows 10,100"))
                    .collect();
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    a
}

fn text(k: usize) -> String {
    format!("CHF: Namba ya malipo 9911{k:08}. Lipa TZS 30,000 kwa CHFID 070707070.")
}

/// The baseline: bind, then keep `window` submit_sm outstanding until `n` are answered.
async fn minimal_loop(port: u16, window: usize, n: usize) -> f64 {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).ok();
    let (mut r, mut w) = tcp.into_split();
    let bind = Outbound::Bind {
        kind: BindKind::Transceiver,
        system_id: "esme".into(),
        password: "secret".into(),
    };
    w.write_all(&pdu::encode(&bind, 1).expect("bind"))
        .await
        .expect("write");
    loop {
        let f = pdu::read_frame(&mut r, 65_536).await.expect("bind_resp");
        if let Inbound::BindResp { status, .. } = pdu::decode(&f) {
            assert_eq!(status, 0, "bind refused");
            break;
        }
    }
    let start = Instant::now();
    let (mut sent, mut done, mut seq) = (0usize, 0usize, 2u32);
    let mut outstanding = VecDeque::new();
    while done < n {
        while sent < n && outstanding.len() < window {
            let req = SubmitReq {
                source: "CHF".into(),
                dest: format!("2557{:08}", sent),
                data_coding: 0,
                esm_class: 0,
                payload: text(sent).into_bytes(),
                registered_delivery: false,
                validity: None,
                ussd_service_op: None,
                its_session_info: None,
            };
            let bytes = pdu::encode(&Outbound::Submit(req), seq).expect("encode");
            w.write_all(&bytes).await.expect("write");
            outstanding.push_back(seq);
            seq += 1;
            sent += 1;
        }
        let f = pdu::read_frame(&mut r, 65_536).await.expect("frame");
        match pdu::decode(&f) {
            Inbound::SubmitResp { status, .. } => {
                assert_eq!(status, 0);
                outstanding.pop_front();
                done += 1;
            }
            Inbound::EnquireLink { seq: s } => {
                let b = pdu::encode(&Outbound::EnquireLinkResp, s).expect("encode");
                w.write_all(&b).await.expect("write");
            }
            _ => {}
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let b = pdu::encode(&Outbound::Unbind, seq).expect("encode");
    let _ = w.write_all(&b).await;
    rate
}

/// The product: `n` SMS queued on the durable outbox, drained by the real pipeline.
async fn through_outbox(port: u16, window: usize, n: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        store
            .write(|tx| -> TxResult<()> {
                for &k in chunk {
                    let sms = OutboundSms {
                        to: Msisdn::parse(&format!("2557{k:08}")).expect("msisdn"),
                        text: text(k),
                        template: "bench".into(),
                        language: Language::Sw,
                        reference: k.to_string(),
                    };
                    enqueue(tx, &format!("bench:{window}:{k}"), &sms)?;
                }
                Ok(())
            })
            .expect("queue");
    }
    store.flush().expect("flush");
    let mut config = Config::default();
    let s = &mut config.smpp;
    s.enabled = true;
    s.port = port;
    s.system_id = "esme".into();
    s.password = "secret".into();
    s.window = window as u32;
    s.tps = 1_000_000;
    s.registered_delivery = false;
    config.sms.sender_id = "CHF".into();
    let shutdown = Shutdown::new();
    let metrics = Arc::new(Metrics::default());
    let start = Instant::now();
    imis_gateway::smpp::spawn(
        &config,
        store.clone(),
        Arc::new(imis_gateway::sms::MoPipeline::new(
            Arc::new(Templates::default()),
            Vec::new(),
        )),
        metrics.clone(),
        None,
        &shutdown,
    );
    while metrics.sms_submitted.load(Ordering::Relaxed) < n as u64 {
        assert!(start.elapsed() < Duration::from_secs(600), "drain stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    shutdown.drain().await;
    assert_eq!(store.pending_count("sms").expect("count"), 0);
    rate
}

/// The outbox path frees a window slot only once the SMS's ack is flushed (so that a crash
/// re-sends at most window × binds SMS). Mean latency of one durable write, for context.
fn flush_latency_ms() -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    let n = 50;
    let start = Instant::now();
    for i in 0..n {
        store
            .write_durable_blocking(|tx| -> TxResult<()> {
                tx.aux_put("bench", &[i as u8], b"x")?;
                Ok(())
            })
            .expect("write");
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let peer = smsc::Smsc::start(&[]);
    println!(
        "SMPP MT throughput, {} submit_sm per run, local SMSC peer npm smpp 0.5.1 (node {})",
        a.messages,
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    println!(
        "durable write (commit + fsync) on this disk: {:.1} ms; an outbox slot is freed once its \
         ack is flushed",
        flush_latency_ms()
    );
    println!(
        "{:>6}  {:>22}  {:>24}  {:>6}",
        "window", "minimal loop (sm/s)", "durable outbox (sm/s)", "ratio"
    );
    for &w in &a.windows {
        // Warm the peer (JIT) once per window, off the clock.
        rt.block_on(minimal_loop(peer.smpp_port, w, 2_000));
        let base = rt.block_on(minimal_loop(peer.smpp_port, w, a.messages));
        let ours = rt.block_on(through_outbox(peer.smpp_port, w, a.messages));
        println!("{w:>6}  {base:>22.0}  {ours:>24.0}  {:>6.2}", ours / base);
    }
}
