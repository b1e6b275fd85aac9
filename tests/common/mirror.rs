//! The real server with its mirror to a throwaway PostgreSQL ([`super::pg::Pg`]), and the
//! `/health` mirror entry a test waits on. Shared by the mirror and fault-injection tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::pg::Pg;
use super::ussd::Ussd;
use super::Server;

/// `serve --demo` with the mirror to `pg` enabled (no pull: the central side starts empty),
/// plus `extra` environment.
pub fn mirrored_server(pg: &Pg, dir: &Path, extra: &[(&str, &str)]) -> Server {
    mirrored_server_to(&pg.dsn(), dir, extra)
}

/// [`mirrored_server`] to the database at `dsn`.
pub fn mirrored_server_to(dsn: &str, dir: &Path, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("IMIS_GATEWAY_MIRROR__ENABLED", "true"),
        ("IMIS_GATEWAY_MIRROR__DSN", dsn),
        ("IMIS_GATEWAY_MIRROR__LEASE_SECS", "1"),
        ("IMIS_GATEWAY_MIRROR__PULL_INTERVAL_SECS", "0"),
    ];
    env.extend_from_slice(extra);
    Server::start(dir, &["--demo"], &env)
}

/// The server's `/health` `components.mirror` entry.
pub fn mirror_health(u: &Ussd) -> Value {
    u.rt.block_on(async {
        let v: Value = u
            .client
            .get(format!("{}/health", u.base))
            .send()
            .await
            .expect("GET /health")
            .json()
            .await
            .expect("health json");
        v["components"]["mirror"].clone()
    })
}

/// Waits (up to `limit`) until the mirror has nothing pending and applied `at_least`
/// writes in all; returns the health entry. No rejection is allowed.
pub fn wait_mirrored_within(u: &Ussd, at_least: u64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let h = mirror_health(u);
        if h["lag_secs"] == 0.0 && h["applied_total"].as_u64().unwrap_or(0) >= at_least {
            assert_eq!(h["rejected_total"], 0, "{h}");
            return h;
        }
        assert!(Instant::now() < deadline, "mirror lag: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
