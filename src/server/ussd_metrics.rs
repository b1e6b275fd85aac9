//! `GET /metrics`: Prometheus text exposition of the USSD metrics.
//!
//! Owns: the route's content type and assembling the text.
//! Must never: compute anything expensive (scrapers poll it often).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.ussd.metrics().render()
            + &crate::facility::verify::metrics_text(&state.store, chrono::Utc::now()),
    )
}
