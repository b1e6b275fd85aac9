//! `POST /ussd/africastalking`: Africa's Talking USSD callbacks.
//!
//! Owns: turning AT's form (`sessionId, serviceCode, phoneNumber, networkCode, text`, with
//! `text` the member's inputs so far joined by `*`) into one hop event, and the reply into
//! `text/plain` `CON …` / `END …`. The hop index is the number of inputs, so a re-sent
//! callback is recognised. A first callback that already carries inputs (a dial string such
//! as `*152*00*1*070707070#`, in `serviceCode` or `text`) starts the session with them.
//! Must never: hold session logic, or answer a malformed request with anything but a 400
//! that says what is wrong (AT ends the session on a 4xx).

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;

use super::AppState;
use crate::domain::Msisdn;
use crate::ussd::{HopEvent, HopKind};

pub const GATEWAY: &str = "africastalking";

pub fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// A request refused with a 400 saying what is wrong with it: small to pass around (a
/// `Response` is not), made a response only at the handler's edge.
#[derive(Debug)]
pub struct BadRequest(pub String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        bad_request(self.0)
    }
}

/// The phone number of field `field`, or why it is not one.
pub fn msisdn_field(field: &str, raw: &str) -> Result<Msisdn, BadRequest> {
    Msisdn::parse(raw).map_err(|e| BadRequest(format!("{field}: {e}")))
}

type Fields = HashMap<String, String>;
type FormBody = Result<Form<Fields>, FormRejection>;

/// AT's form, or the 400 that says why the body is not one.
fn form_fields(form: FormBody) -> Result<Fields, BadRequest> {
    form.map(|Form(f)| f).map_err(|e| {
        BadRequest(format!(
            "expected an application/x-www-form-urlencoded body: {e}"
        ))
    })
}

/// A form field, trimmed; empty counts as missing (AT sends every field, some blank).
fn field<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    f.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Inputs carried by a dial string beyond the configured service code:
/// `*152*00*1*2#` with service code `*152*00#` → `["1", "2"]`.
pub fn dial_inputs(dialled: &str, service_code: &str) -> Vec<String> {
    let segs = |s: &str| -> Vec<String> {
        s.trim()
            .trim_matches(|c| c == '*' || c == '#')
            .split('*')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let dialled = segs(dialled);
    let base = segs(service_code);
    if dialled.len() > base.len() && dialled[..base.len()] == base[..] {
        dialled[base.len()..].to_vec()
    } else {
        Vec::new()
    }
}

pub async fn africastalking(State(state): State<AppState>, form: FormBody) -> Response {
    hop(&state, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// One callback as a hop; `Err` is the 400 that says what is wrong with it.
async fn hop(state: &AppState, form: FormBody) -> Result<Response, BadRequest> {
    let f = form_fields(form)?;
    let required = |k: &str| field(&f, k).ok_or_else(|| BadRequest(format!("missing field {k}")));
    let session_id = required("sessionId")?;
    let msisdn = msisdn_field("phoneNumber", required("phoneNumber")?)?;
    let service_code = required("serviceCode")?;
    let text = f.get("text").map(|t| t.trim()).unwrap_or("");
    let inputs: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('*').collect()
    };
    let hop = u32::try_from(inputs.len()).unwrap_or(u32::MAX);
    let engine = &state.ussd;
    let known = match engine.has_session(GATEWAY, session_id, &msisdn) {
        Ok(k) => k,
        Err(e) => {
            // The engine meets the same failure and answers the member with an END screen
            // in their language ("temporarily unavailable" on a full disk): an aggregator
            // shows that, where a 503 would leave the phone with a generic network error.
            tracing::error!(error = %e, "reading the USSD session");
            false
        }
    };
    let (kind, input) = if known {
        (
            HopKind::Continue,
            inputs.last().copied().unwrap_or("").to_string(),
        )
    } else {
        let mut all = dial_inputs(service_code, &state.config.ussd.service_code);
        all.extend(inputs.iter().map(|s| s.to_string()));
        (HopKind::New, all.join("*"))
    };
    let reply = engine
        .handle(HopEvent {
            gateway: GATEWAY.into(),
            session_id: session_id.to_string(),
            msisdn,
            service_code: service_code.to_string(),
            hop_index: Some(hop),
            input,
            kind,
        })
        .await;
    let prefix = if reply.end { "END" } else { "CON" };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{prefix} {}", reply.text),
    )
        .into_response())
}

/// `POST /ussd/africastalking/events`: AT's end-of-session notification (`sessionId,
/// phoneNumber, status` = `Success` | `Incomplete` | `Failed`, `errorMessage`...). A session
/// that ends `Incomplete` or `Failed` before our END was dropped: it becomes resumable.
pub async fn events(State(state): State<AppState>, form: FormBody) -> Response {
    session_ended(&state, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn session_ended(state: &AppState, form: FormBody) -> Result<Response, BadRequest> {
    let f = form_fields(form)?;
    let get = |k: &str| field(&f, k);
    let (Some(session_id), Some(phone), Some(status)) =
        (get("sessionId"), get("phoneNumber"), get("status"))
    else {
        return Err(BadRequest(
            "sessionId, phoneNumber and status are required".into(),
        ));
    };
    let msisdn = msisdn_field("phoneNumber", phone)?;
    let kind = if status.eq_ignore_ascii_case("success") {
        HopKind::End
    } else {
        HopKind::Abort
    };
    tracing::info!(
        session = %session_id,
        msisdn = %msisdn.masked(),
        status,
        error = get("errorMessage").unwrap_or(""),
        "africastalking session ended"
    );
    state
        .ussd
        .handle(HopEvent {
            gateway: GATEWAY.into(),
            session_id: session_id.to_string(),
            msisdn,
            service_code: get("serviceCode").unwrap_or("").to_string(),
            hop_index: None,
            input: String::new(),
            kind,
        })
        .await;
    Ok((StatusCode::OK, "OK").into_response())
}

#[cfg(test)]
mod tests {
    use super::dial_inputs;

    #[test]
    fn dial_string_inputs_beyond_the_service_code() {
        assert_eq!(
            dial_inputs("*152*00*1*070707070#", "*152*00#"),
            vec!["1", "070707070"]
        );
        assert!(dial_inputs("*152*00#", "*152*00#").is_empty());
        assert!(dial_inputs("*150*1#", "*152*00#").is_empty());
    }
}
