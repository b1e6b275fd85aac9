//! `POST /ussd/json`: a generic JSON USSD adapter for aggregators without their own format.
//!
//! Request `{"sessionId", "msisdn", "serviceCode", "input", "type": "begin"|"continue"|"end"|
//! "abort", "hop"?}`; reply `{"action": "CON"|"END", "message": ...}`. `input` holds only the
//! latest answer (on `begin`, any dial-string inputs joined by `*`). Without `hop` the engine
//! takes each request as the next hop, so re-sends cannot be recognised: send it.
//! Must never: hold session logic, or answer a malformed request with anything but a 400
//! that says what is wrong.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::ussd_at::{bad_request, dial_inputs, msisdn_field};
use super::AppState;
use crate::ussd::{HopEvent, HopKind};

pub const GATEWAY: &str = "json";

pub async fn json(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Json(v) = match body {
        Ok(b) => b,
        Err(e) => return bad_request(format!("expected a JSON object: {e}")),
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
    let Some(session_id) = text("sessionId").filter(|s| !s.is_empty()) else {
        return bad_request("missing string field sessionId".into());
    };
    let Some(phone) = text("msisdn") else {
        return bad_request("missing string field msisdn".into());
    };
    let msisdn = match msisdn_field("msisdn", phone) {
        Ok(m) => m,
        Err(bad) => return bad.into_response(),
    };
    let service_code = text("serviceCode").unwrap_or("").to_string();
    let kind = match text("type") {
        Some("begin") => HopKind::New,
        Some("continue") => HopKind::Continue,
        Some("end") => HopKind::End,
        Some("abort") => HopKind::Abort,
        other => {
            return bad_request(format!(
                "field type must be begin, continue, end or abort, got {other:?}"
            ))
        }
    };
    let hop_index = match v.get("hop") {
        None | Some(Value::Null) => None,
        Some(h) => match h.as_u64().and_then(|h| u32::try_from(h).ok()) {
            Some(h) => Some(h),
            None => return bad_request("field hop must be a non-negative integer".into()),
        },
    };
    let mut input = text("input").unwrap_or("").to_string();
    if kind == HopKind::New {
        let mut all = dial_inputs(&service_code, &state.config.ussd.service_code);
        all.extend(
            input
                .split('*')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        input = all.join("*");
    }
    let reply = state
        .ussd
        .handle(HopEvent {
            gateway: GATEWAY.into(),
            session_id: session_id.to_string(),
            msisdn,
            service_code,
            hop_index,
            input,
            kind,
        })
        .await;
    Json(json!({
        "action": if reply.end { "END" } else { "CON" },
        "message": reply.text,
    }))
    .into_response()
}
