//! Control numbers in live mode against a GePG peer run by the test (it checks our
//! signatures and signs its answers): a USSD renewal with an empty pool queues a bill; the
//! first submission times out, the retry carries the same BillId and GePG answers 7226
//! ("duplicate bill": already submitted); GePG's signed callback then gives the number,
//! which reaches the member by SMS exactly once, even when GePG calls back twice.
//! A product with an empty account code (AccCodePremiums, as in openIMIS's demo data) bills
//! under `[gepg] sp_code`; with that empty too, no bill reaches GePG and `/health` says why.

mod common;
mod gepg_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::ussd::Ussd;
use common::Server;
use gepg_support::*;
use imis_gateway::domain::PaymentStatus;
use imis_gateway::payments::xml::{self, Ack, BillSubReq, BillSubResp, ControlNumberResult};
use imis_gateway::store::Store;

const NEEMA: &str = "255754100002";

#[derive(Clone)]
struct Peer {
    keys: Arc<TestKeys>,
    bill_ids: Arc<Mutex<Vec<String>>>,
    /// (Gepg-Code header, SpCode) of each submission, for [`record_bill`].
    seen: Arc<Mutex<Vec<(String, String)>>>,
    server: Arc<Mutex<Option<String>>>,
}

impl Peer {
    fn new(keys: Arc<TestKeys>) -> Peer {
        Peer {
            keys,
            bill_ids: Arc::default(),
            seen: Arc::default(),
            server: Arc::default(),
        }
    }
}

async fn sigqrequest(State(peer): State<Peer>, body: Bytes) -> Vec<u8> {
    let s = xml::split_envelope(&body, 1 << 20).expect("envelope");
    assert!(
        peer.keys.ours.verify(s.inner, &s.signature),
        "bill not signed by the gateway"
    );
    let req = BillSubReq::parse(&xml::parse(s.inner, 1 << 20).unwrap()).unwrap();
    let id = req.bills[0].bill_id.clone();
    let attempt = {
        let mut ids = peer.bill_ids.lock().unwrap();
        ids.push(id.clone());
        ids.len()
    };
    if attempt == 1 {
        // Accepted, but the ack comes too late: the gateway times out and must retry.
        tokio::time::sleep(Duration::from_secs(3)).await;
        return peer.keys.signed(&Ack::to_xml("gepgBillSubReqAck", "7101"));
    }
    let base = peer.server.lock().unwrap().clone().expect("server url");
    let keys = peer.keys.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let resp = BillSubResp {
            results: vec![ControlNumberResult {
                bill_id: id,
                control_number: Some("993080008282".into()),
                codes: vec!["7101".into()],
            }],
        };
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let (status, raw) = post_async(
                &client,
                &format!("{base}/gepg/control-number"),
                keys.signed(&resp.to_xml()),
            )
            .await
            .unwrap();
            assert_eq!(status, 200);
            assert_eq!(ack_of(&keys, &raw).1, "7101");
        }
    });
    peer.keys.signed(&Ack::to_xml("gepgBillSubReqAck", "7226"))
}

/// A [`Peer`] answering bill submissions with `handler`, served on a port and a thread of
/// its own, and its base URL.
fn start_peer<H, T>(handler: H) -> (Peer, String)
where
    H: axum::handler::Handler<T, Peer>,
    T: 'static,
{
    let peer = Peer::new(Arc::new(TestKeys::new()));
    let app = axum::Router::new()
        .route("/api/bill/sigqrequest", post(handler))
        .with_state(peer.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await
        })
    });
    (peer, url)
}

/// The server's environment in live mode against the peer at `gepg_url`, plus `extra`.
fn live_env(keys: &TestKeys, gepg_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = keys.env();
    env.push(("IMIS_GATEWAY_GEPG__MODE".into(), "live".into()));
    env.push(("IMIS_GATEWAY_GEPG__URL".into(), gepg_url.into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

#[test]
fn a_timed_out_bill_is_retried_with_the_same_bill_id_and_the_number_arrives_by_sms() {
    let (peer, gepg_url) = start_peer(sigqrequest);
    let keys = peer.keys.clone();

    let dir = tempfile::tempdir().unwrap();
    let env = live_env(
        &keys,
        &gepg_url,
        &[
            ("IMIS_GATEWAY_GEPG__REQUEST_TIMEOUT_SECS", "1"),
            ("IMIS_GATEWAY_GEPG__POOL_LOW_WATER", "0"),
        ],
    );
    let server = Server::start(dir.path(), &["--demo"], &env_refs(&env));
    *peer.server.lock().unwrap() = Some(server.url(""));

    let u = Ussd::new(&server);
    let (end, screen) = u.json("bill-1", NEEMA, "begin", "2*1*100000014*1*1", 0);
    assert!(end, "{screen}");
    assert!(!screen.contains("99"), "no control number yet: {screen}");

    let start = Instant::now();
    while peer.bill_ids.lock().unwrap().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(40), "no retry");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ids = peer.bill_ids.lock().unwrap().clone();
    assert_eq!(ids[0], ids[1], "the retry carries the same BillId");
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = Poster::new(server.url("")).get("/payments/metrics");
    assert!(
        metrics.contains("gepg_control_numbers_total 1\n"),
        "{metrics}"
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    assert!(
        logs.iter().any(|l| l.contains("same BillId")),
        "the timeout is logged"
    );
    let store = Store::open(dir.path(), Default::default()).unwrap();
    let payment = store
        .payment_by_control_number("993080008282")
        .unwrap()
        .expect("the number reached the payment");
    assert_eq!(payment.id.to_string(), ids[0], "BillId = payment id");
    assert_eq!(payment.status, PaymentStatus::Assigned);
    let sms: Vec<_> = all_sms(&store)
        .into_iter()
        .filter(|s| s.template == "control_number" && s.text.contains("993080008282"))
        .collect();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].to.as_str(), NEEMA);
}

/// A GePG peer that numbers every bill and remembers the (Gepg-Code header, SpCode) of each
/// submission.
async fn record_bill(
    State(peer): State<Peer>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Vec<u8> {
    let s = xml::split_envelope(&body, 1 << 20).expect("envelope");
    assert!(peer.keys.ours.verify(s.inner, &s.signature));
    let header = headers
        .get("Gepg-Code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Real GePG refuses an empty SpCode with 7242: so does parsing.
    let Ok(req) = BillSubReq::parse(&xml::parse(s.inner, 1 << 20).unwrap()) else {
        peer.seen.lock().unwrap().push((header, String::new()));
        return peer.keys.signed(&Ack::to_xml("gepgBillSubReqAck", "7242"));
    };
    peer.seen
        .lock()
        .unwrap()
        .push((header, req.sp_code.clone()));
    let base = peer.server.lock().unwrap().clone().expect("server url");
    let keys = peer.keys.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let resp = BillSubResp {
            results: req
                .bills
                .iter()
                .map(|b| ControlNumberResult {
                    bill_id: b.bill_id.clone(),
                    control_number: Some(format!("9930{:08}", b.bill_id.parse::<u64>().unwrap())),
                    codes: vec!["7101".into()],
                })
                .collect(),
        };
        let (status, raw) = post_async(
            &reqwest::Client::new(),
            &format!("{base}/gepg/control-number"),
            keys.signed(&resp.to_xml()),
        )
        .await
        .unwrap();
        assert_eq!((status, ack_of(&keys, &raw).1.as_str()), (200, "7101"));
    });
    peer.keys.signed(&Ack::to_xml("gepgBillSubReqAck", "7101"))
}

/// A store holding product CHF01 on sale with the given account code (AccCodePremiums).
fn seed_product(dir: &std::path::Path, account_code: Option<&str>) {
    use imis_gateway::domain::{Money, Product};
    let store = Store::open(dir, Default::default()).unwrap();
    let today = chrono::Utc::now().date_naive();
    let product = Product {
        lump_sum: Money::tzs(30_000),
        sp_code: account_code.map(String::from),
        ..Product::free(
            1,
            uuid::Uuid::new_v4(),
            "CHF01",
            "CHF iCHF",
            today - chrono::Duration::days(400),
            today + chrono::Duration::days(400),
        )
    };
    store
        .write(|tx| -> imis_gateway::store::TxResult<()> {
            tx.put_product(&product)?;
            Ok(())
        })
        .unwrap();
    store.flush().unwrap();
}

/// The server over a store holding CHF01 with `account_code`, with a pool of one number
/// per product, against a [`record_bill`] peer.
fn start_with_recorder(
    account_code: Option<&str>,
    sp_code: &str,
) -> (tempfile::TempDir, Server, Peer, Poster) {
    let dir = tempfile::tempdir().unwrap();
    seed_product(dir.path(), account_code);
    let (peer, gepg_url) = start_peer(record_bill);
    let keys = peer.keys.clone();
    let env = live_env(
        &keys,
        &gepg_url,
        &[
            ("IMIS_GATEWAY_GEPG__SP_CODE", sp_code),
            ("IMIS_GATEWAY_GEPG__POOL_LOW_WATER", "1"),
            ("IMIS_GATEWAY_GEPG__POOL_BATCH", "1"),
            ("IMIS_GATEWAY_GEPG__RECONCILE_AT", ""),
        ],
    );
    let server = Server::start(dir.path(), &[], &env_refs(&env));
    *peer.server.lock().unwrap() = Some(server.url(""));
    let http = Poster::new(server.url(""));
    (dir, server, peer, http)
}

fn json_at(http: &Poster, path: &str) -> serde_json::Value {
    serde_json::from_str(&http.get(path)).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "no {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_product_without_an_account_code_gets_its_control_number_under_the_configured_sp_code() {
    let (dir, server, peer, http) = start_with_recorder(Some(" "), "SP999");
    wait_for("pooled number", || {
        json_at(&http, "/payments/status")["pool"]["CHF01"]["free"] == 1
    });
    assert_eq!(
        peer.seen.lock().unwrap().clone(),
        vec![("SP999".to_string(), "SP999".to_string())],
        "the bill went under [gepg] sp_code, in the header and the message"
    );
    let health = json_at(&http, "/health");
    assert_eq!(health["gepg"]["sp_code_missing"], serde_json::json!([]));
    let (status, logs) = server.terminate();
    assert!(status.success(), "{}", logs.join("\n"));
    let store = Store::open(dir.path(), Default::default()).unwrap();
    assert_eq!(
        store.products().unwrap()[0].sp_code.as_deref(),
        Some(" "),
        "the product itself is left as openIMIS has it"
    );
}

#[test]
fn with_no_account_code_and_no_configured_sp_code_no_bill_is_sent_and_the_operator_is_told_why() {
    let (dir, server, peer, http) = start_with_recorder(Some(""), "");
    let why = "product CHF01 has no account code (AccCodePremiums) and [gepg] sp_code is empty";
    // The pool top-up ran and was refused (counted) rather than sending an empty SpCode.
    wait_for("refused top-up", || {
        http.get("/payments/metrics")
            .contains("gepg_without_sp_code_total 1\n")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(peer.seen.lock().unwrap().is_empty(), "a bill reached GePG");
    let health = json_at(&http, "/health");
    assert_eq!(health["gepg"]["sp_code_missing"], serde_json::json!([why]));
    assert_eq!(health["status"], "ok", "the rest of the server works");
    let status = json_at(&http, "/payments/status");
    assert_eq!(status["sp_code_missing"], serde_json::json!([why]));
    assert_eq!(status["bills_pending"], 0);
    assert_eq!(
        status["pool"]["CHF01"],
        serde_json::json!({"free": 0, "awaited": 0})
    );
    let (exit, logs) = server.terminate();
    assert!(exit.success(), "{}", logs.join("\n"));
    assert_eq!(
        logs.iter().filter(|l| l.contains(why)).count(),
        1,
        "logged once, at start-up: {}",
        logs.join("\n")
    );
    // `payments show` (same configuration) says it too.
    let out = common::run(
        &[
            "payments",
            "show",
            "--control-number",
            "991000000001",
            "--data-dir",
            &dir.path().display().to_string(),
        ],
        &[("IMIS_GATEWAY_GEPG__SP_CODE", "")],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("warning: {why}: its bills are not sent to GePG")),
        "{shown}"
    );
}
