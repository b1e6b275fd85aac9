//! Configuration: one TOML file with documented defaults, every key overridable by an
//! environment variable `IMIS_GATEWAY_<SECTION>__<KEY>` (`[smpp] host` →
//! `IMIS_GATEWAY_SMPP__HOST`).
//!
//! Owns: the configuration schema, its defaults, and the override rules.
//! Must never: read configuration from anywhere else at run time, or silently ignore an
//! unknown key (operators script against these names; a typo must fail loudly).
//!
//! The section and key names are a public interface: keep them stable once released.
//! `imis-gateway.example.toml` at the repository root documents every key with its default.

mod scheduler;
pub use scheduler::{parse_hhmm, SchedulerConfig};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod edge;
mod gepg;
pub use edge::{
    AdminConfig, InboundSmsConfig, Secret, ServerConfig, SmsAggregator, SmsAuthScheme, SourceNet,
};
pub use gepg::{GepgConfig, GepgMode};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "IMIS_GATEWAY_";

/// Variables under the prefix that are not configuration keys: `IMIS_GATEWAY_LOG` sets the
/// log filter before any configuration is read.
const NOT_CONFIG: &[&str] = &["LOG"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {var}: expected IMIS_GATEWAY_<SECTION>__<KEY>")]
    EnvName { var: String },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub ussd: UssdConfig,
    pub smpp: SmppConfig,
    pub sms: SmsConfig,
    pub gepg: GepgConfig,
    pub mirror: MirrorConfig,
    pub scheduler: SchedulerConfig,
    pub officer: OfficerConfig,
    pub limits: LimitsConfig,
    pub domain: DomainConfig,
    pub privacy: crate::domain::privacy::Privacy,
    pub sms_guard: crate::domain::sms_caps::CostGuardSettings,
    pub admin: AdminConfig,
    pub inbound_sms: InboundSmsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// sled page cache, in MiB.
    pub cache_mb: u64,
    /// Below this much free space (MiB) on the data directory's disk, new work is refused
    /// (503 / a temporary error to peers) until space returns.
    pub min_free_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("data"),
            cache_mb: 256,
            min_free_mb: 16,
        }
    }
}

impl StoreConfig {
    /// The store's tuning knobs from this section.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            cache_capacity: self.cache_mb.saturating_mul(1024 * 1024),
            min_free_bytes: self.min_free_mb.saturating_mul(1024 * 1024),
            ..crate::store::StoreOptions::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UssdConfig {
    /// The service code members dial.
    pub service_code: String,
    /// Session lifetime in seconds.
    pub session_ttl_secs: u64,
    /// Directory of the menu files (`menus/*.toml`), reloaded on SIGHUP.
    pub menus_dir: PathBuf,
    /// A member whose session dropped mid-journey and who redials within this many seconds
    /// is offered "continue / start again".
    pub resume_window_secs: u64,
    /// Time an action may take before the member gets a holding screen and the result by SMS.
    pub hop_budget_ms: u64,
    /// Per-gateway overrides of `hop_budget_ms` (`africastalking`, `json`, `smpp`...).
    pub gateway_budget_ms: std::collections::BTreeMap<String, u64>,
    /// Navigation keys: back one screen (or page), home, next page.
    pub key_back: String,
    pub key_home: String,
    pub key_more: String,
    /// Fault injection for tests and drills: delay this action (empty = every action) by
    /// `fault_action_delay_ms`. 0 disables it; never set it in production.
    pub fault_action: String,
    pub fault_action_delay_ms: u64,
}

impl Default for UssdConfig {
    fn default() -> Self {
        UssdConfig {
            service_code: "*152*00#".to_string(),
            session_ttl_secs: 180,
            menus_dir: PathBuf::from("menus"),
            resume_window_secs: 120,
            hop_budget_ms: 3000,
            gateway_budget_ms: std::collections::BTreeMap::new(),
            key_back: "0".to_string(),
            key_home: "00".to_string(),
            key_more: "98".to_string(),
            fault_action: String::new(),
            fault_action_delay_ms: 0,
        }
    }
}

// The protocol knobs below are configuration's own types: smpp and sms map them (config
// depends on no protocol module).

/// How the ESME binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    /// One bind_transceiver per connection.
    #[default]
    Transceiver,
    /// A bind_transmitter and a bind_receiver per connection pair.
    TxRx,
}

/// How this SMSC writes ids in submit_sm_resp and in receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdFormat {
    /// The same form in both places.
    #[default]
    Same,
    /// Hex in submit_sm_resp, decimal in receipts.
    HexThenDecimal,
    /// Decimal in submit_sm_resp, hex in receipts.
    DecimalThenHex,
}

/// What data_coding 0 ("SMSC default alphabet") means on this SMSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAlphabet {
    #[default]
    Gsm7,
    Latin1,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    /// Outstanding requests per bind.
    pub window: u32,
    /// Contracted submits per second.
    pub tps: u32,
    /// `transceiver` (one TRX bind per connection) or `tx_rx` (a transmitter and a receiver).
    pub bind_mode: BindMode,
    /// Connections (of `bind_mode`) kept to the SMSC.
    pub binds: u32,
    /// Seconds between enquire_link keepalives.
    pub enquire_link_secs: u64,
    /// Seconds to wait for a response (bind, submit_sm, enquire_link) before giving up on it.
    pub response_timeout_secs: u64,
    /// Reconnect backoff, and a bind's pause after ESME_RTHROTTLED/RMSGQFUL: first, cap, ms.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    pub throttle_pause_ms: u64,
    pub throttle_pause_max_ms: u64,
    /// Ask the SMSC for delivery receipts.
    pub registered_delivery: bool,
    /// Validity period of MT SMS, seconds (0 = the SMSC's default).
    pub validity_secs: u64,
    /// Lease on a claimed outbox entry, seconds; after a crash, entries come back after it.
    pub lease_secs: u64,
    /// Message ids in submit_sm_resp vs receipts: `same`, `hex_then_decimal`, `decimal_then_hex`.
    pub message_id_format: IdFormat,
    /// What data_coding 0 means for MO on this SMSC: `gsm7` or `latin1`.
    pub mo_default_alphabet: DefaultAlphabet,
    /// Seconds a multipart MO waits for its missing segments before it is stored incomplete.
    pub mo_reassembly_secs: u64,
    /// Segments a multipart MO may have; larger ones are dropped.
    pub mo_max_parts: u8,
    /// Seconds the same MO content from one sender is an SMSC redelivery (later: a resend).
    pub mo_dedupe_secs: u64,
    /// Largest PDU accepted from the SMSC, bytes.
    pub max_pdu_bytes: u32,
    /// ussd_service_op values: incoming begin / answer / release (0 = none), outgoing
    /// continue / end. Defaults are SMPP 3.4's; some gateways use vendor values.
    pub ussd_op_begin: u8,
    pub ussd_op_answer: u8,
    pub ussd_op_release: u8,
    pub ussd_op_continue: u8,
    pub ussd_op_end: u8,
}

impl Default for SmppConfig {
    fn default() -> Self {
        SmppConfig {
            enabled: false,
            host: "127.0.0.1".to_string(),
            port: 2775,
            system_id: "imisgw".to_string(),
            password: String::new(),
            window: 10,
            tps: 50,
            bind_mode: BindMode::Transceiver,
            binds: 1,
            enquire_link_secs: 30,
            response_timeout_secs: 10,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            throttle_pause_ms: 1000,
            throttle_pause_max_ms: 30_000,
            registered_delivery: true,
            validity_secs: 172_800,
            lease_secs: 60,
            message_id_format: IdFormat::Same,
            mo_default_alphabet: DefaultAlphabet::Gsm7,
            mo_reassembly_secs: 600,
            mo_max_parts: 16,
            mo_dedupe_secs: 30,
            max_pdu_bytes: 65_536,
            ussd_op_begin: 1,
            ussd_op_answer: 18,
            ussd_op_release: 0,
            ussd_op_continue: 2,
            ussd_op_end: 17,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Sender id (source address) of outbound SMS.
    pub sender_id: String,
    /// Directory of editable SMS templates.
    pub templates_dir: PathBuf,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            sender_id: "CHF".to_string(),
            templates_dir: PathBuf::from("sms-templates"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    pub enabled: bool,
    /// PostgreSQL connection string of the central openIMIS database.
    pub dsn: String,
    /// Writes per PostgreSQL transaction.
    pub batch_size: usize,
    /// Lease of a claimed batch, seconds; a restarted writer waits this long first.
    pub lease_secs: u64,
    /// Backoff while the database is unreachable: first delay (ms) and cap (s).
    pub backoff_base_ms: u64,
    pub backoff_cap_secs: u64,
    /// `AuditUserID` of mirrored rows (payment tables always use -1).
    pub audit_user_id: i32,
    /// Seconds between incremental pulls of central changes; 0 disables the pull.
    pub pull_interval_secs: u64,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            enabled: false,
            dsn: String::new(),
            batch_size: 200,
            lease_secs: 30,
            backoff_base_ms: 500,
            backoff_cap_secs: 60,
            audit_user_id: -3,
            pull_interval_secs: 60,
        }
    }
}

/// `[officer]`: the SMS command language of enrolment officers (src/officer/).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfficerConfig {
    /// Route SMS from officers' phones to the command module (false: they get HELP only).
    pub enabled: bool,
    /// The command grammar and reply texts, editable without recompiling.
    pub grammar_file: PathBuf,
    /// Wrong PINs in a row that lock an officer out.
    pub max_pin_failures: u32,
    /// Minutes a lockout lasts (an administrator can unlock earlier).
    pub lockout_minutes: u64,
    /// Hours during which the same text from the same officer is a resend: same reply,
    /// no second effect.
    pub repeat_window_hours: u64,
    /// Product of REG when the officer names none and has no policy of a product on sale.
    pub default_product: String,
    /// How often the command worker looks for new commands when not woken, ms.
    pub poll_ms: u64,
}

impl Default for OfficerConfig {
    fn default() -> Self {
        OfficerConfig {
            enabled: true,
            grammar_file: PathBuf::from("sms-templates/officer/commands.toml"),
            max_pin_failures: 5,
            lockout_minutes: 30,
            repeat_window_hours: 24,
            default_product: "CHF01".to_string(),
            poll_ms: 20,
        }
    }
}

/// `[limits]`: per-phone rate limits on USSD hops and inbound SMS (src/ratelimit.rs).
/// A rate of 0 turns that limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// USSD hops one phone may send per minute, sustained, over every gateway.
    pub ussd_hops_per_minute: u32,
    /// USSD hops one phone may send at once before the per-minute rate applies.
    pub ussd_hop_burst: u32,
    /// Inbound SMS one phone may send per hour, sustained; the rest are acknowledged but
    /// not processed, and the phone is told so once an hour.
    pub sms_mo_per_hour: u32,
    /// Inbound SMS one phone may send at once before the per-hour rate applies.
    pub sms_mo_burst: u32,
    /// Phones each limiter tracks at most; beyond, new phones pass unlimited.
    pub max_tracked_phones: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            ussd_hops_per_minute: 120,
            ussd_hop_burst: 120,
            sms_mo_per_hour: 120,
            sms_mo_burst: 60,
            max_tracked_phones: 200_000,
        }
    }
}

/// `[domain]`: openIMIS settings of this deployment's data (src/domain/).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainConfig {
    /// Digits of an insurance number (CHFID) a person types (openIMIS `INSUREE_NUMBER_LENGTH`).
    pub chfid_length: usize,
    /// Its check digit: `mod7` (openIMIS Tanzania's CHF rule), `luhn` or `none`. Only typed
    /// numbers are checked: a number the central database holds is found whatever the rule.
    pub chfid_check: crate::domain::ChfidCheck,
}

impl Default for DomainConfig {
    fn default() -> Self {
        let rule = crate::domain::ChfidRule::default();
        DomainConfig {
            chfid_length: rule.length,
            chfid_check: rule.check,
        }
    }
}

impl DomainConfig {
    /// The rule a typed CHFID must pass.
    pub fn chfid_rule(&self) -> crate::domain::ChfidRule {
        crate::domain::ChfidRule {
            length: self.chfid_length,
            check: self.chfid_check,
        }
    }
}

impl Config {
    /// Loads the file (if any), then applies `IMIS_GATEWAY_*` overrides from the process
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NOT_CONFIG.contains(&rest) {
                continue;
            }
            let Some((section, key)) = rest.split_once("__") else {
                return Err(ConfigError::EnvName { var });
            };
            if section.is_empty() || key.is_empty() {
                return Err(ConfigError::EnvName { var });
            }
            let section = table
                .entry(section.to_ascii_lowercase())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section) = section else {
                return Err(ConfigError::EnvName { var });
            };
            section.insert(key.to_ascii_lowercase(), scalar(&value));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.scheduler.validate()?;
        self.server.validate()?;
        self.admin.validate()?;
        self.inbound_sms.validate()?;
        if (self.limits.ussd_hops_per_minute > 0 && self.limits.ussd_hop_burst == 0)
            || (self.limits.sms_mo_per_hour > 0 && self.limits.sms_mo_burst == 0)
        {
            return Err(ConfigError::Invalid(
                "[limits] a burst must be >= 1 when its rate is on (rate 0 turns a limit off)"
                    .into(),
            ));
        }
        if self.ussd.session_ttl_secs == 0 {
            return Err(ConfigError::Invalid(
                "[ussd] session_ttl_secs must be > 0".into(),
            ));
        }
        if self.smpp.enabled && self.smpp.tps == 0 {
            return Err(ConfigError::Invalid("[smpp] tps must be > 0".into()));
        }
        if self.smpp.enabled && (self.smpp.window == 0 || self.smpp.binds == 0) {
            return Err(ConfigError::Invalid(
                "[smpp] window and binds must be > 0".into(),
            ));
        }
        if let Some(problem) = self.domain.chfid_rule().problem() {
            return Err(ConfigError::Invalid(format!("[domain] {problem}")));
        }
        if self.mirror.enabled && self.mirror.dsn.is_empty() {
            return Err(ConfigError::Invalid(
                "[mirror] enabled = true needs a dsn".into(),
            ));
        }
        Ok(())
    }
}

/// An environment value as TOML: integers, floats and booleans keep their type so that
/// `IMIS_GATEWAY_SMPP__PORT=2775` fills a `u16`; anything else is a string.
fn scalar(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = raw.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(f) = raw.parse::<f64>() {
        if raw.contains('.') {
            return toml::Value::Float(f);
        }
    }
    toml::Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.gepg.mode, GepgMode::Disabled);
        assert!(!c.smpp.enabled);
        assert!(!c.mirror.enabled);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "[smpp]\nhost = \"smsc.example\"\nport = 2775\n[server]\nlisten = \"0.0.0.0:9000\""
        )
        .unwrap();
        let c = Config::load_with_env(
            Some(f.path()),
            env(&[
                ("IMIS_GATEWAY_SMPP__HOST", "10.1.1.1"),
                ("IMIS_GATEWAY_SMPP__TPS", "120"),
                ("IMIS_GATEWAY_GEPG__MODE", "live"),
                ("PATH", "/usr/bin"),
                ("IMIS_GATEWAY_LOG", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(c.smpp.host, "10.1.1.1");
        assert_eq!(c.smpp.port, 2775);
        assert_eq!(c.smpp.tps, 120);
        assert_eq!(c.gepg.mode, GepgMode::Live);
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn unknown_keys_and_bad_values_fail_loudly() {
        let typo = Config::load_with_env(None, env(&[("IMIS_GATEWAY_SMPP__HOTS", "x")]));
        assert!(matches!(typo, Err(ConfigError::Invalid(m)) if m.contains("hots")));
        let bad_port = Config::load_with_env(None, env(&[("IMIS_GATEWAY_SMPP__PORT", "99999")]));
        assert!(matches!(bad_port, Err(ConfigError::Invalid(_))));
        let no_key = Config::load_with_env(None, env(&[("IMIS_GATEWAY_SMPP", "x")]));
        assert!(matches!(no_key, Err(ConfigError::EnvName { .. })));
        let mirror = Config::load_with_env(None, env(&[("IMIS_GATEWAY_MIRROR__ENABLED", "true")]));
        assert!(matches!(mirror, Err(ConfigError::Invalid(m)) if m.contains("dsn")));
    }

    #[test]
    fn a_broken_file_names_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[server\nlisten=").unwrap();
        let err = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains(&f.path().display().to_string()));
    }

    #[test]
    fn rate_limits_are_overridable_and_a_zero_burst_is_refused() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("IMIS_GATEWAY_LIMITS__USSD_HOPS_PER_MINUTE", "0"),
                ("IMIS_GATEWAY_LIMITS__SMS_MO_BURST", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.limits.ussd_hops_per_minute, 0);
        assert_eq!(c.limits.sms_mo_burst, 3);
        assert_eq!(c.limits.sms_mo_per_hour, 120);
        let bad = Config::load_with_env(None, env(&[("IMIS_GATEWAY_LIMITS__SMS_MO_BURST", "0")]));
        assert!(matches!(bad, Err(ConfigError::Invalid(m)) if m.contains("[limits]")));
        let off = Config::load_with_env(
            None,
            env(&[
                ("IMIS_GATEWAY_LIMITS__USSD_HOPS_PER_MINUTE", "0"),
                ("IMIS_GATEWAY_LIMITS__USSD_HOP_BURST", "0"),
            ]),
        );
        assert!(off.is_ok(), "a limit that is off needs no burst");
    }

    #[test]
    fn the_chfid_rule_is_configurable_and_checked() {
        let c = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(c.domain.chfid_rule(), crate::domain::ChfidRule::default());
        let luhn = Config::load_with_env(
            None,
            env(&[
                ("IMIS_GATEWAY_DOMAIN__CHFID_LENGTH", "10"),
                ("IMIS_GATEWAY_DOMAIN__CHFID_CHECK", "luhn"),
            ]),
        )
        .unwrap();
        assert_eq!(
            luhn.domain.chfid_rule(),
            crate::domain::ChfidRule {
                length: 10,
                check: crate::domain::ChfidCheck::Luhn
            }
        );
        let bad = Config::load_with_env(None, env(&[("IMIS_GATEWAY_DOMAIN__CHFID_CHECK", "mod9")]));
        assert!(matches!(bad, Err(ConfigError::Invalid(_))), "{bad:?}");
        let short = Config::load_with_env(None, env(&[("IMIS_GATEWAY_DOMAIN__CHFID_LENGTH", "1")]));
        assert!(matches!(short, Err(ConfigError::Invalid(m)) if m.contains("[domain]")));
    }

    #[test]
    fn example_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("imis-gateway.example.toml");
        let c = Config::load_with_env(Some(&path), env(&[])).unwrap();
        assert_eq!(c, Config::default());
    }
}
