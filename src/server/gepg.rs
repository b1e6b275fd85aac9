//! The payment edge: GePG's three callbacks, the direct mobile-money callback, the payments
//! metrics and status, and (simulator mode only) the simulated GePG.
//!
//! | Route | What |
//! |---|---|
//! | `POST /gepg/control-number` (`/api/GetReqControlNumber`) | `gepgBillSubResp` |
//! | `POST /gepg/payment` (`/api/GetPaymentData`) | `gepgPmtSpInfo` |
//! | `POST /gepg/reconciliation` (`/api/GetReconciliationData`) | `gepgSpReconcResp` |
//! | `POST /payments/mobile-money` | JSON + `X-Signature: <hex HMAC-SHA256>` |
//! | `GET /payments/metrics`, `GET /payments/status` | counters; pool levels |
//! | `POST /gepg-sim/...` | the simulator (bills, `pay`, reconciliation), simulator mode only |
//!
//! The reconciliation trigger is on the admin listener (`server::admin`).
//!
//! The openIMIS paths are aliases so that a GePG already configured for openIMIS can call
//! us unchanged. Must never: hold payment logic (it is in `crate::payments`), or answer
//! before the service says the effects are durable.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;
use crate::payments::{mobile, pool, simulator, Applied, Payments, Reply};
use crate::store::StoreError;

/// GePG's callbacks and the mobile-money callback: what `[server] allow_gepg` guards.
pub fn callbacks() -> Router<AppState> {
    Router::new()
        .route("/gepg/control-number", post(control_number))
        .route("/api/GetReqControlNumber", post(control_number))
        .route("/gepg/payment", post(payment))
        .route("/api/GetPaymentData", post(payment))
        .route("/gepg/reconciliation", post(reconciliation))
        .route("/api/GetReconciliationData", post(reconciliation))
        .route("/payments/mobile-money", post(mobile_money))
}

/// Read-only counters and pool levels (no personal data).
pub fn reads() -> Router<AppState> {
    Router::new()
        .route("/payments/metrics", get(metrics))
        .route("/payments/status", get(status))
}

/// The simulated GePG: mounted only in simulator mode (it pays anything for anyone).
pub fn simulator() -> Router<AppState> {
    Router::new()
        .route("/gepg-sim/api/bill/sigqrequest", post(sim_bill))
        .route(
            "/gepg-sim/api/reconciliations/sig_sp_qrequest",
            post(sim_reconcile),
        )
        .route("/gepg-sim/pay", post(sim_pay))
}

fn xml(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/xml")], r.body).into_response()
}

fn service(state: &AppState) -> Arc<Payments> {
    state.payments.clone()
}

async fn control_number(State(state): State<AppState>, body: Bytes) -> Response {
    xml(service(&state).on_control_number(&body).await)
}

async fn payment(State(state): State<AppState>, body: Bytes) -> Response {
    xml(service(&state).on_payment(&body).await)
}

async fn reconciliation(State(state): State<AppState>, body: Bytes) -> Response {
    xml(service(&state).on_reconciliation(&body).await)
}

async fn mobile_money(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let p = service(&state);
    if p.config.mobile_money_secret.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "mobile-money callback not enabled"})),
        );
    }
    if body.len() > p.config.max_body_bytes {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": "body too large"})),
        );
    }
    let sig = headers.get("x-signature").and_then(|v| v.to_str().ok());
    let notice = match mobile::verify_and_parse(&p.config.mobile_money_secret, sig, &body) {
        Ok(n) => n,
        Err(e @ mobile::MobileError::Signature) => {
            p.count(|m| &m.bad_signature, 1);
            tracing::warn!(error = %e, "mobile-money callback refused");
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": e.to_string()})),
            );
        }
        Err(e) => {
            p.count(|m| &m.malformed, 1);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            );
        }
    };
    match p.apply(vec![notice]).await.map(|mut r| r.pop()) {
        Ok(Some(Applied::New(o))) => (
            StatusCode::OK,
            Json(json!({"status": "applied", "outcome": format!("{o:?}")})),
        ),
        Ok(Some(Applied::Duplicate)) => (StatusCode::OK, Json(json!({"status": "duplicate"}))),
        Ok(Some(Applied::Conflict(why))) => (
            StatusCode::CONFLICT,
            Json(json!({"status": "conflict", "error": why})),
        ),
        Ok(None) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "not recorded; retry"})),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.payments.metrics.render(),
    )
        .into_response()
}

async fn status(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let p = service(&state);
    let levels = tokio::task::spawn_blocking(move || -> Result<Value, StoreError> {
        let mut out = serde_json::Map::new();
        for product in p.store.products()? {
            let (free, awaited) = pool::level(&p.store, product.id)?;
            out.insert(product.code, json!({"free": free, "awaited": awaited}));
        }
        Ok(json!({
            "pool": out,
            "bills_pending": p.store.pending_count(crate::payments::BILL_TOPIC)?,
            "simulator_paid_total": simulator::total_paid(&p).to_string(),
            "sp_code_missing": p.sp_code_missing.reasons(),
        }))
    })
    .await;
    match levels {
        Ok(Ok(v)) => (StatusCode::OK, Json(v)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading the payment pool status failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": e.to_string()})),
            )
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        ),
    }
}

async fn sim_bill(State(state): State<AppState>, body: Bytes) -> Response {
    xml(simulator::on_bill(service(&state), &body).await)
}

async fn sim_reconcile(State(state): State<AppState>, body: Bytes) -> Response {
    xml(simulator::on_reconcile(service(&state), &body).await)
}

async fn sim_pay(State(state): State<AppState>, body: Bytes) -> (StatusCode, Json<Value>) {
    let req: simulator::PayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("body: {e}")})),
            )
        }
    };
    match simulator::pay(service(&state), req).await {
        Ok(r) => (StatusCode::OK, Json(json!(r))),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        ),
    }
}
