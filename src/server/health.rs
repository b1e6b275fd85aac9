//! `GET /health`: is the store answering, and what state is each component in.
//!
//! Monitoring and load balancers poll this often, so it must stay cheap: one point read of
//! the store, no scans.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::config::GepgMode;

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = match state.store.check() {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    // A full data disk refuses new work: the server is degraded until space returns.
    let disk = state.store.disk_status();
    let store_ok = store["ok"] == json!(true);
    let disk_ok = disk.state == "ok";
    let config = &state.config;
    let components = json!({
        "store": if store_ok { "ok" } else { "failing" },
        "http": "ok",
        "smpp": if config.smpp.enabled { "configured" } else { "disabled" },
        "gepg": match config.gepg.mode {
            GepgMode::Disabled => "disabled",
            GepgMode::Simulator => "simulator",
            GepgMode::Live => "live",
        },
        "mirror": crate::mirror::status::health(&state.store, config.mirror.enabled),
        "disk": disk,
    });
    // Per-bind SMPP state and the SMS counters, when SMPP runs.
    let smpp = config.smpp.enabled.then(|| {
        let mut v = state.smpp.health();
        v["counters"] = state.smpp.snapshot();
        v["counters"]["mo_rate_limited"] = json!(state
            .mo
            .counters()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed));
        v
    });
    // Why some bills are not sent to GePG (a product without an SpCode), from memory.
    let gepg = json!({
        "mode": components["gepg"],
        "disabled": state.payments.disabled,
        "sp_code_missing": state.payments.sp_code_missing.reasons(),
    });
    let status = if store_ok && disk_ok {
        "ok"
    } else {
        "degraded"
    };
    let code = if store_ok && disk_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": status,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started.elapsed().as_secs(),
            "store": store,
            "components": components,
            "smpp": smpp,
            "gepg": gepg,
        })),
    )
}
