//! The admin listener: routes that change state or ask GePG for work, behind a bearer token.
//!
//! | Route | What |
//! |---|---|
//! | `POST /payments/reconcile` | `{"date": "YYYY-MM-DD"}` → the report; go-live ≤ date ≤ today (EAT), rate-limited |
//! | `POST /admin/officers/{code}/unlock` | lifts an officer's PIN lockout while the server runs |
//! | `GET /admin/status` | uptime, payments mode, connection cap |
//!
//! Owns: the bearer check (constant-time), the reconciliation bounds and its rate limit.
//! Must never: be mounted on the public listener, answer anything without the token, or
//! log the token.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};

use super::AppState;
use crate::config::Secret;
use crate::ratelimit::{Limiter, Rate};

/// What the admin routes need besides [`AppState`].
pub struct Admin {
    token: Secret,
    go_live: NaiveDate,
    reconcile: Option<Limiter>,
    connection_cap: usize,
}

impl Admin {
    pub fn new(config: &crate::config::AdminConfig, go_live: NaiveDate, cap: usize) -> Admin {
        let rate = Rate::per_hour(config.reconcile_per_hour, config.reconcile_burst);
        Admin {
            token: config.token.clone(),
            go_live,
            reconcile: rate.map(|r| Limiter::new(r, 16)),
            connection_cap: cap,
        }
    }
}

/// The admin router; every route needs `Authorization: Bearer <token>`.
pub fn router(state: AppState, admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/payments/reconcile", post(reconcile))
        .route("/admin/officers/:code/unlock", post(unlock))
        .route("/admin/status", get(status))
        .layer(axum::Extension(admin.clone()))
        .layer(middleware::from_fn_with_state(admin, bearer))
        .with_state(state)
}

/// Whether `header` (the `Authorization` value) carries `token`, compared in constant time.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let given = given.trim().as_bytes();
    !token.is_empty() && given.len() == token.len() && openssl::memcmp::eq(given, token.as_bytes())
}

async fn bearer(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !bearer_matches(given, admin.token.expose()) {
        tracing::warn!(path = %req.uri().path(), "admin request without a valid bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "admin token required"})),
        )
            .into_response();
    }
    next.run(req).await
}

/// Go-live ≤ `date` ≤ `today`: GePG has nothing before go-live, and a future day has no
/// transactions yet (asking would only cost a GePG request).
pub fn reconcile_date_ok(
    date: NaiveDate,
    today: NaiveDate,
    go_live: NaiveDate,
) -> Result<(), String> {
    if date > today {
        return Err(format!("{date} is in the future (today is {today})"));
    }
    if date < go_live {
        return Err(format!(
            "{date} is before go-live ({go_live}, [admin] go_live)"
        ));
    }
    Ok(())
}

async fn reconcile(
    State(state): State<AppState>,
    axum::Extension(admin): axum::Extension<Arc<Admin>>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let bad = |msg: String| (StatusCode::BAD_REQUEST, Json(json!({"error": msg})));
    let date = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["date"].as_str().map(String::from))
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let Some(date) = date else {
        return bad("body must be {\"date\": \"YYYY-MM-DD\"}".into());
    };
    let today = crate::domain::eat::eat_date(Utc::now());
    if let Err(why) = reconcile_date_ok(date, today, admin.go_live) {
        return bad(why);
    }
    // Only well-formed requests count: each one is a request to GePG.
    if let Some(limiter) = &admin.reconcile {
        if !limiter.check("reconcile", Instant::now()).allowed() {
            tracing::warn!(%date, "reconciliation request refused: [admin] reconcile_per_hour");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"error": "too many reconciliation requests; try later"})),
            );
        }
    }
    match crate::payments::reconcile::request(&state.payments, date).await {
        Ok(report) => (
            StatusCode::OK,
            Json(json!({"date": date.to_string(), "report": report})),
        ),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        ),
    }
}

async fn unlock(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> (StatusCode, Json<Value>) {
    let store = state.store.clone();
    let code2 = code.clone();
    let done =
        tokio::task::spawn_blocking(move || crate::officer::auth::unlock(&store, &code2)).await;
    match done {
        Ok(Ok(Some(had))) => (
            StatusCode::OK,
            Json(json!({"officer": code, "unlocked": true, "had_failures": had})),
        ),
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such officer"})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "officer unlock failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "store unavailable; retry"})),
            )
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        ),
    }
}

async fn status(
    State(state): State<AppState>,
    axum::Extension(admin): axum::Extension<Arc<Admin>>,
) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
        "payments_disabled": state.payments.disabled,
        "gepg_mode": state.config.gepg.mode,
        "max_connections": admin.connection_cap,
        "bills_pending": state.store.pending_count(crate::payments::BILL_TOPIC).ok(),
        "sms_pending": state.store.pending_count(crate::sms::SMS_TOPIC).ok(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reconcile_dates_are_bounded_by_go_live_and_today() {
        let (today, go_live) = (d("2026-03-10"), d("2024-01-01"));
        assert!(reconcile_date_ok(d("2026-03-09"), today, go_live).is_ok());
        assert!(reconcile_date_ok(today, today, go_live).is_ok());
        assert!(reconcile_date_ok(go_live, today, go_live).is_ok());
        assert!(reconcile_date_ok(d("1900-01-01"), today, go_live).is_err());
        assert!(reconcile_date_ok(d("2026-03-11"), today, go_live).is_err());
        assert!(reconcile_date_ok(d("9999-12-31"), today, go_live).is_err());
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
        // No token configured never matches (the listener does not start then anyway).
        assert!(!bearer_matches(Some("Bearer "), ""));
    }
}
