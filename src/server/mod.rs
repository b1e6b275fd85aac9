//! The HTTP edge.
//!
//! Owns: the listening socket, the route table, and turning HTTP requests into calls on the
//! application: `/health`, the USSD gateway adapters, inbound SMS, GePG callbacks and, in
//! simulator mode, the GePG simulator; and the admin listener ([`admin`], bearer token).
//! [`conn`] accepts connections for both (timeouts, the connection cap), [`allow`] checks
//! source addresses per route group. README "Threat model" says who may reach what.
//! Must never: hold business rules, or answer 200 for a write that is not yet durable.

pub mod admin;
mod allow;
pub mod conn;
pub mod gepg;
mod health;
pub mod sms_inbound;
pub mod ussd_at;
pub mod ussd_json;
mod ussd_metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::config::{Config, GepgMode};
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

/// The public listener's routes. The simulator's `/gepg-sim/*` exist only in simulator
/// mode; administrative routes are never here (see [`admin`]).
pub fn router(state: AppState) -> Router {
    let c = state.config.clone();
    let ussd = Router::new()
        .route("/ussd/africastalking", post(ussd_at::africastalking))
        .route("/ussd/africastalking/events", post(ussd_at::events))
        .route("/ussd/json", post(ussd_json::json))
        .layer(DefaultBodyLimit::max(c.server.max_body_bytes));
    let sms = Router::new()
        .route("/sms/inbound", post(sms_inbound::inbound))
        .layer(DefaultBodyLimit::max(c.inbound_sms.max_body_bytes));
    // Room above the callbacks' own limit, so that a body a little over it still gets GePG's
    // signed refusal (7242); far over it is cut off here with a plain 413.
    let cap = c.gepg.max_body_bytes.saturating_mul(4).max(64 * 1024);
    let callbacks = gepg::callbacks().layer(DefaultBodyLimit::max(cap));
    let mut public = Router::new()
        .route("/health", get(health::health))
        .route("/sms/metrics", get(sms_inbound::metrics))
        .route("/metrics", get(ussd_metrics::metrics))
        .merge(gepg::reads())
        .merge(allow::guard(ussd, "ussd", &c.server.allow_ussd))
        .merge(allow::guard(sms, "sms", &c.server.allow_sms))
        .merge(allow::guard(callbacks, "gepg", &c.server.allow_gepg));
    if c.gepg.mode == GepgMode::Simulator {
        public = public.merge(gepg::simulator());
    }
    public.with_state(state)
}

/// Connections the admin listener holds at once (its own cap, apart from the public one).
const ADMIN_CONNECTIONS: usize = 32;

/// The listeners `serve` bound, and what they share.
pub struct Listeners {
    pub public: TcpListener,
    /// The admin listener and its token, when `[admin]` has both an address and a token.
    pub admin: Option<(TcpListener, Arc<admin::Admin>)>,
    /// The public listener's limits (the admin listener derives its own).
    pub limits: Arc<conn::ConnLimits>,
}

/// Serves until the shutdown signal, then stops accepting and lets in-flight requests finish.
pub async fn run(listeners: Listeners, state: AppState, signal: Signal) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listeners.public.local_addr().ok();
    tracing::info!(?addr, "http edge listening");
    let limits = listeners.limits;
    let admin = listeners.admin.map(|(listener, a)| {
        let app = admin::router(state.clone(), a);
        let own = Arc::new(limits.for_admin(ADMIN_CONNECTIONS));
        conn::serve(listener, app, own, "admin", signal.clone())
    });
    let public = conn::serve(listeners.public, router(state), limits, "public", signal);
    match admin {
        Some(admin) => {
            let (p, a) = tokio::join!(public, admin);
            p.and(a)
        }
        None => public.await,
    }
}
