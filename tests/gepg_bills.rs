//! Control numbers in live mode against a GePG peer run by the test (it checks our
//! signatures and signs its answers): a USSD renewal with an empty pool queues a bill; the
//! first submission times out, the retry carries the same BillId and GePG answers 7226
//! ("duplicate bill": already submitted); GePG's signed callback then gives the number,
//! which reaches the member by SMS exactly once, even when GePG calls back twice.

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
    server: Arc<Mutex<Option<String>>>,
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

#[test]
fn a_timed_out_bill_is_retried_with_the_same_bill_id_and_the_number_arrives_by_sms() {
    let keys = Arc::new(TestKeys::new());
    let peer = Peer {
        keys: keys.clone(),
        bill_ids: Arc::new(Mutex::new(Vec::new())),
        server: Arc::new(Mutex::new(None)),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let gepg_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/api/bill/sigqrequest", post(sigqrequest))
        .with_state(peer.clone());
    rt.spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut env = keys.env();
    for (k, v) in [
        ("IMIS_GATEWAY_GEPG__MODE", "live"),
        ("IMIS_GATEWAY_GEPG__URL", gepg_url.as_str()),
        ("IMIS_GATEWAY_GEPG__REQUEST_TIMEOUT_SECS", "1"),
        ("IMIS_GATEWAY_GEPG__POOL_LOW_WATER", "0"),
    ] {
        env.push((k.into(), v.into()));
    }
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
