//! Source-address allowlists per route group (`[server] allow_ussd`, `allow_sms`,
//! `allow_gepg`): USSD gateways, SMS aggregators and GePG call from known addresses.
//!
//! Owns: the check of the peer address (`ConnectInfo`, set by `server::conn`) against a
//! group's networks. Must never: let a request through when the peer is unknown, or run
//! when the list is empty (an empty list means "anyone who can reach the port").

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::AppState;
use crate::config::SourceNet;

#[derive(Clone)]
struct Allow {
    group: &'static str,
    nets: Arc<Vec<SourceNet>>,
}

/// `routes` behind the allowlist `nets` (unchanged when `nets` is empty). The networks were
/// checked when the configuration was loaded; one that no longer parses is skipped.
pub fn guard(routes: Router<AppState>, group: &'static str, nets: &[String]) -> Router<AppState> {
    if nets.is_empty() {
        return routes;
    }
    let nets = nets
        .iter()
        .filter_map(|n| SourceNet::parse(n).ok())
        .collect();
    let allow = Allow {
        group,
        nets: Arc::new(nets),
    };
    routes.layer(middleware::from_fn_with_state(allow, check))
}

async fn check(State(allow): State<Allow>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if peer.is_some_and(|ip| allow.nets.iter().any(|n| n.contains(ip))) {
        return next.run(req).await;
    }
    tracing::warn!(
        group = allow.group,
        peer = ?peer,
        path = %req.uri().path(),
        "request from an address not in the allowlist: refused"
    );
    (StatusCode::FORBIDDEN, "source address not allowed\n").into_response()
}
