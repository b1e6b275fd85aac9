//! `[server]`, `[admin]` and `[inbound_sms]`: what the HTTP edge listens on, how long it
//! waits, how many connections it holds, who may reach which routes, and the credentials
//! of the admin listener and of the SMS aggregators.
//!
//! Owns: those keys, their defaults and their checks (addresses, networks, dates).
//! Must never: print a secret — [`Secret`]'s `Debug` shows only whether one is set.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

use super::ConfigError;

/// A credential from the configuration: compared by the edge, never logged.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() { "<set>" } else { "<empty>" })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP edge (health, USSD adapters, callbacks).
    pub listen: SocketAddr,
    /// How long a graceful shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
    /// A request head must arrive within this many seconds; the same clock closes a
    /// keep-alive connection idle between requests (hyper starts it as soon as the
    /// connection waits for a request head).
    pub header_read_timeout_secs: u64,
    /// Connections the public listener holds at once (the admin one has its own 32); beyond it new connections wait in the
    /// kernel's backlog. Lowered at start to what the open-file limit allows.
    pub max_connections: usize,
    /// Largest request body on the USSD routes, bytes (GePG callbacks: `[gepg]
    /// max_body_bytes`; inbound SMS: `[inbound_sms] max_body_bytes`).
    pub max_body_bytes: usize,
    /// Source networks (`"10.1.2.3"`, `"10.0.0.0/8"`, IPv6 too) allowed on each route
    /// group; empty = anyone who can reach the port. Others get 403 and a log line.
    pub allow_ussd: Vec<String>,
    pub allow_sms: Vec<String>,
    pub allow_gepg: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            max_connections: 4096,
            max_body_bytes: 64 * 1024,
            allow_ussd: Vec::new(),
            allow_sms: Vec::new(),
            allow_gepg: Vec::new(),
        }
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.header_read_timeout_secs == 0 || self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "[server] header_read_timeout_secs and max_connections must be > 0".into(),
            ));
        }
        for (key, list) in [
            ("allow_ussd", &self.allow_ussd),
            ("allow_sms", &self.allow_sms),
            ("allow_gepg", &self.allow_gepg),
        ] {
            for net in list {
                SourceNet::parse(net)
                    .map_err(|e| ConfigError::Invalid(format!("[server] {key}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// An address or a network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceNet {
    addr: IpAddr,
    prefix: u8,
}

impl SourceNet {
    /// `"10.1.2.3"` (one host), `"10.0.0.0/8"`, `"2001:db8::/32"`.
    pub fn parse(s: &str) -> Result<SourceNet, String> {
        let (ip, prefix) = match s.trim().split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| format!("{s:?} is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0..={max}"))?,
        };
        Ok(SourceNet { addr, prefix })
    }

    /// Whether `ip` is inside; an IPv4-mapped IPv6 peer counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
                IpAddr::V6(v) => u128::from(v),
            }
        };
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        // Both families sit in the top bits (IPv4 shifted up), so one mask fits both.
        let mask = u128::MAX << (128 - u32::from(self.prefix));
        bits(self.addr) & mask == bits(ip) & mask
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener; empty = no admin listener. It starts only with a
    /// token: without one it stays off and says so at start-up.
    pub listen: String,
    /// Bearer token of every admin route (`Authorization: Bearer <token>`); set it with
    /// `IMIS_GATEWAY_ADMIN__TOKEN` rather than in the file.
    pub token: Secret,
    /// First day the gateway took payments (`YYYY-MM-DD`): reconciliation refuses earlier
    /// days (and any day after today).
    pub go_live: String,
    /// Reconciliation requests accepted per hour (GePG is asked each time), and at once.
    pub reconcile_per_hour: u32,
    pub reconcile_burst: u32,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:8081".into(),
            token: Secret::default(),
            go_live: "2024-01-01".into(),
            reconcile_per_hour: 12,
            reconcile_burst: 3,
        }
    }
}

impl AdminConfig {
    /// The listen address, `None` when the key is empty.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.listen.trim().is_empty() {
            return Ok(None);
        }
        self.listen
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid(format!("[admin] listen {:?}", self.listen)))
    }

    pub fn go_live_date(&self) -> Result<chrono::NaiveDate, ConfigError> {
        chrono::NaiveDate::parse_from_str(self.go_live.trim(), "%Y-%m-%d").map_err(|_| {
            ConfigError::Invalid(format!(
                "[admin] go_live {:?}: expected YYYY-MM-DD",
                self.go_live
            ))
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.go_live_date()?;
        if self.reconcile_per_hour > 0 && self.reconcile_burst == 0 {
            return Err(ConfigError::Invalid(
                "[admin] reconcile_burst must be >= 1 when reconcile_per_hour is on".into(),
            ));
        }
        Ok(())
    }
}

/// How an aggregator proves a `POST /sms/inbound` is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsAuthScheme {
    /// `X-Signature: <hex HMAC-SHA256 of the body, keyed with the secret>`.
    Hmac,
    /// `X-Gateway-Secret: <the secret>` (for aggregators that cannot sign).
    Header,
}

/// One more aggregator besides the default one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsAggregator {
    /// Shown in logs (`aggregator = "beem"`).
    pub name: String,
    pub scheme: SmsAuthScheme,
    pub secret: Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSmsConfig {
    /// The default aggregator's scheme and secret (`IMIS_GATEWAY_INBOUND_SMS__SECRET`).
    /// No secret here and no `aggregators`: `POST /sms/inbound` answers 503 (`--demo`
    /// without one accepts the documented demo secret instead).
    pub scheme: SmsAuthScheme,
    pub secret: Secret,
    /// More aggregators, each with its own name, scheme and secret.
    pub aggregators: Vec<SmsAggregator>,
    /// Longest MO text accepted, bytes of UTF-8 (a few concatenated segments); longer → 413.
    pub max_text_bytes: usize,
    /// Largest request body, bytes; larger → 413 before anything is read further.
    pub max_body_bytes: usize,
}

impl Default for InboundSmsConfig {
    fn default() -> Self {
        InboundSmsConfig {
            scheme: SmsAuthScheme::Hmac,
            secret: Secret::default(),
            aggregators: Vec::new(),
            max_text_bytes: 2048,
            max_body_bytes: 8 * 1024,
        }
    }
}

impl InboundSmsConfig {
    /// Every configured (name, scheme, secret), the default aggregator first.
    pub fn credentials(&self) -> Vec<(String, SmsAuthScheme, Secret)> {
        let default = self
            .secret
            .is_set()
            .then(|| ("default".to_string(), self.scheme, self.secret.clone()));
        default
            .into_iter()
            .chain(
                self.aggregators
                    .iter()
                    .filter(|a| a.secret.is_set())
                    .map(|a| (a.name.clone(), a.scheme, a.secret.clone())),
            )
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_text_bytes == 0 || self.max_body_bytes < self.max_text_bytes {
            return Err(ConfigError::Invalid(
                "[inbound_sms] max_text_bytes must be > 0 and <= max_body_bytes".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn source_networks_match_hosts_and_prefixes() {
        let host = SourceNet::parse("10.1.2.3").unwrap();
        assert!(host.contains(ip("10.1.2.3")));
        assert!(!host.contains(ip("10.1.2.4")));
        let net = SourceNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        // An IPv4 peer seen on a dual-stack socket.
        assert!(net.contains(ip("::ffff:10.9.9.9")));
        let v6 = SourceNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(SourceNet::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        assert!(SourceNet::parse("10.0.0.0/33").is_err());
        assert!(SourceNet::parse("example.org").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = InboundSmsConfig {
            secret: Secret::new("hunter2"),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<set>"));
        assert_eq!(c.credentials().len(), 1);
    }
}
