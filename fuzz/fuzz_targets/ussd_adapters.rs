//! The USSD HTTP adapters (src/server/ussd_at.rs, ussd_json.rs) called as axum calls them:
//! the body goes through the same extractor (form or JSON) and then the handler, against a
//! whole application state with demo data. Any body gets 200 or a 4xx (503 only if the
//! store failed), never a panic; a 200 is `CON …`/`END …` (AT) or `{"action", "message"}`
//! (JSON) whose screen fits one USSD page. A third mode walks one session hop by hop with
//! fuzzed answers, so that the engine's menus, pagination and validators are reached.
#![no_main]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, State};
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::{Form, Json};
use imis_gateway::server::{ussd_at, ussd_json};
use imis_gateway::ussd::gsm;
use imis_gateway_fuzz::{app_state, runtime};
use libfuzzer_sys::fuzz_target;

/// Demo members (and the demo officer) so that journeys reach real policies.
const PHONES: [&str; 4] = [
    "255754000002",
    "255754000003",
    "255754100001",
    "255754000001",
];

fn request(content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request")
}

async fn at(body: Vec<u8>) -> Response {
    let req = request("application/x-www-form-urlencoded", body);
    let form = Form::<HashMap<String, String>>::from_request(req, &()).await;
    ussd_at::africastalking(State(app_state().clone()), form).await
}

async fn json(body: Vec<u8>) -> Response {
    let req = request("application/json", body);
    let v = Json::<serde_json::Value>::from_request(req, &()).await;
    ussd_json::json(State(app_state().clone()), v).await
}

/// Checks the answer; returns the screen text of a 200.
async fn check(resp: Response, is_at: bool) -> Option<(String, bool)> {
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    let body = String::from_utf8(body.to_vec()).expect("UTF-8 answer");
    assert!(
        status == StatusCode::OK
            || status.is_client_error()
            || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}: {body}"
    );
    if status != StatusCode::OK {
        assert!(!body.is_empty(), "a {status} must say what is wrong");
        return None;
    }
    let (text, end) = if is_at {
        match body.split_once(' ') {
            Some(("CON", t)) => (t.to_string(), false),
            Some(("END", t)) => (t.to_string(), true),
            _ => panic!("AT answer is neither CON nor END: {body:?}"),
        }
    } else {
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
        let end = match v["action"].as_str() {
            Some("CON") => false,
            Some("END") => true,
            other => panic!("action {other:?}"),
        };
        (v["message"].as_str().expect("message").to_string(), end)
    };
    assert!(gsm::fits(&text), "screen over one USSD page: {text:?}");
    Some((text, end))
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Built outside the runtime: its setup blocks on the runtime itself.
    let _ = app_state();
    let rt = runtime();
    match mode % 3 {
        0 => {
            rt.block_on(async { check(at(rest.to_vec()).await, true).await });
        }
        1 => {
            rt.block_on(async { check(json(rest.to_vec()).await, false).await });
        }
        _ => {
            // One fresh session per input (two: one per adapter), a demo phone, answers
            // split on '\n'; AT's `text` is every answer so far joined by '*'.
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let Some((&who, rest)) = rest.split_first() else {
                return;
            };
            let phone = PHONES[usize::from(who) % PHONES.len()];
            let sid = format!("fz{}", NEXT.fetch_add(1, Ordering::Relaxed));
            let text = String::from_utf8_lossy(rest);
            let answers: Vec<&str> = text.split('\n').take(12).collect();
            rt.block_on(async {
                for k in 0..=answers.len() {
                    let body = format!(
                        "sessionId={}&serviceCode=%2A152%2A00%23&phoneNumber={phone}&networkCode=63902&text={}",
                        enc(&sid),
                        enc(&answers[..k].join("*"))
                    );
                    let json_body = serde_json::json!({
                        "sessionId": format!("{sid}j"),
                        "msisdn": phone,
                        "serviceCode": "*152*00#",
                        "input": if k == 0 { "" } else { answers[k - 1] },
                        "type": if k == 0 { "begin" } else { "continue" },
                        "hop": k,
                    });
                    let a1 = check(at(body.into_bytes()).await, true).await;
                    let a2 = check(json(json_body.to_string().into_bytes()).await, false).await;
                    if a1.is_none_or(|(_, end)| end) || a2.is_none_or(|(_, end)| end) {
                        break;
                    }
                }
            });
        }
    }
});
