//! The HTTP edge.
//!
//! Owns: the listening socket, the route table, and turning HTTP requests into calls on the
//! application: `/health`, the USSD gateway adapters, inbound SMS, GePG callbacks and, in
//! simulator mode, the GePG simulator.
//! Must never: hold business rules, or answer 200 for a write that is not yet durable.

pub mod gepg;
mod health;
pub mod sms_inbound;
pub mod ussd_at;
pub mod ussd_json;
mod ussd_metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::shutdown::Signal;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub started: Instant,
    /// The USSD session engine behind the gateway adapters.
    pub ussd: Arc<crate::ussd::Engine>,
    /// GePG payments (callbacks, simulator) behind `gepg` routes.
    pub payments: Arc<crate::payments::Payments>,
    /// The inbound SMS pipeline behind `POST /sms/inbound` (the same one SMPP MO use).
    pub mo: Arc<crate::sms::MoPipeline>,
    /// What the SMPP client counts (all zero when SMPP is off).
    pub smpp: Arc<crate::smpp::metrics::Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/sms/inbound", post(sms_inbound::inbound))
        .route("/sms/metrics", get(sms_inbound::metrics))
        .route("/metrics", get(ussd_metrics::metrics))
        .route("/ussd/africastalking", post(ussd_at::africastalking))
        .route("/ussd/africastalking/events", post(ussd_at::events))
        .route("/ussd/json", post(ussd_json::json))
        .merge(gepg::routes())
        .with_state(state)
}

/// Serves until the shutdown signal, then stops accepting and lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    mut signal: Signal,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "http edge listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { signal.recv().await })
        .await
}
