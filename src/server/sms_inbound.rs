//! `POST /sms/inbound`: MO SMS from HTTP aggregators that have no SMPP, into the same
//! pipeline as deliver_sm (dedupe, durable store, router).
//!
//! Accepts JSON or a form with `from`, `to`, `text`, `id` (the aggregator's message id,
//! which dedupes redeliveries for good). Answers 200 only once the MO is on disk, 400 with
//! the reason for malformed input, 503 when the store fails (the aggregator should retry).
//!
//! Every request must prove it comes from a configured aggregator (`[inbound_sms]`):
//! `X-Signature: <hex HMAC-SHA256 of the body>` or `X-Gateway-Secret: <secret>`, compared
//! in constant time; otherwise 401 and nothing is read further. No aggregator configured:
//! 503 (the route is off). A text over `max_text_bytes`: 413.
//! Must never: answer 200 before the durable write, store or parse anything from a request
//! that failed authentication, or log a secret or a signature.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use tracing::Instrument;

use super::AppState;
use crate::config::{InboundSmsConfig, SmsAuthScheme};
use crate::domain::Msisdn;
use crate::sms::inbound::{self, Accepted, Channel, Dedupe, Mo};

fn bad(msg: impl Into<String>) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()})))
}

/// The fields, from JSON or a form body.
fn fields(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        return serde_urlencoded_pairs(body);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("body must be a JSON object")?;
    Ok(obj
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(n) => Some((k.clone(), n.to_string())),
            _ => None,
        })
        .collect())
}

fn serde_urlencoded_pairs(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let s = std::str::from_utf8(body).map_err(|_| "form body is not UTF-8".to_string())?;
    let decode = |x: &str| -> Result<String, String> {
        let x = x.replace('+', " ");
        let mut out = Vec::with_capacity(x.len());
        let b = x.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = x.get(i + 1..i + 3).ok_or("bad %-escape in form")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in form")?);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| "form value is not UTF-8".to_string())
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The secret `--demo` accepts (`X-Gateway-Secret`) when no aggregator is configured.
pub const DEMO_SECRET: &str = "demo-inbound-sms-secret";

/// Why a request was refused before its body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No aggregator configured: the route is off.
    Off,
    /// No credential, or none that matches.
    Refused,
}

/// The name of the configured aggregator whose credential `headers` carry for `body`.
pub fn authenticate(
    c: &InboundSmsConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AuthError> {
    let creds = c.credentials();
    if creds.is_empty() {
        return Err(AuthError::Off);
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let same = |a: &[u8], b: &[u8]| a.len() == b.len() && openssl::memcmp::eq(a, b);
    for (name, scheme, secret) in creds {
        let ok = match scheme {
            SmsAuthScheme::Header => header("x-gateway-secret")
                .is_some_and(|given| same(given.as_bytes(), secret.expose().as_bytes())),
            SmsAuthScheme::Hmac => header("x-signature").is_some_and(|given| {
                let given = given.to_ascii_lowercase();
                crate::payments::mobile::hmac_hex(secret.expose().as_bytes(), body)
                    .is_ok_and(|want| same(given.as_bytes(), want.as_bytes()))
            }),
        };
        if ok {
            return Ok(name);
        }
    }
    Err(AuthError::Refused)
}

pub async fn inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let limits = &state.config.inbound_sms;
    let aggregator = match authenticate(limits, &headers, &body) {
        Ok(name) => name,
        Err(AuthError::Off) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "inbound SMS over HTTP is off: no [inbound_sms] secret"})),
            )
        }
        Err(AuthError::Refused) => {
            tracing::warn!(
                len = body.len(),
                "POST /sms/inbound without a valid credential: refused"
            );
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "aggregator credential required"})),
            );
        }
    };
    let f = match fields(&headers, &body) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let get = |k: &str| f.get(k).map(|s| s.trim().to_string());
    let (Some(from), Some(to), Some(id)) = (get("from"), get("to"), get("id")) else {
        return bad("from, to, text and id are required");
    };
    let Some(text) = f.get("text").cloned() else {
        return bad("from, to, text and id are required");
    };
    if text.len() > limits.max_text_bytes {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": format!("text over {} bytes", limits.max_text_bytes)})),
        );
    }
    if id.is_empty() || id.len() > 128 {
        return bad("id must be 1 to 128 characters");
    }
    let msisdn = match Msisdn::parse(&from) {
        Ok(m) => m,
        Err(e) => return bad(format!("from: {e}")),
    };
    let mo = Mo {
        from: msisdn.as_str().to_string(),
        to,
        text,
        channel: Channel::Http,
        dedupe: Dedupe::Forever(format!("http:{id}")),
        parts: 1,
        complete: true,
    };
    let span =
        tracing::info_span!("mo_http", from = %msisdn.masked(), %aggregator, aggregator_id = %id);
    let accepted = inbound::accept(&state.store, &state.mo, &mo, Utc::now())
        .instrument(span.clone())
        .await;
    let _e = span.enter();
    match accepted {
        Ok(a) => {
            tracing::info!(mo_id = a.id(), "MO stored");
            let dup = matches!(a, Accepted::Duplicate(_));
            (
                StatusCode::OK,
                Json(json!({"status": "stored", "mo_id": a.id(), "duplicate": dup})),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "storing an MO failed");
            let why = match &e {
                inbound::InboundError::Store(s) if s.is_disk_full() => "disk full; retry later",
                _ => "store unavailable; retry",
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": why})))
        }
    }
}

/// `GET /sms/metrics`: SMPP/SMS counters in Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> (StatusCode, String) {
    let depth = state.store.pending_count(crate::sms::SMS_TOPIC).ok();
    let mut text = state.smpp.prometheus(depth);
    text.push_str(&state.mo.counters().prometheus());
    (StatusCode::OK, text)
}
