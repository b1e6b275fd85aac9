//! `[gepg]`: how payments reach GePG (disabled, the built-in simulator, or the real one).
//!
//! Owns: the section's keys and defaults. Must never: choose a mode on its own — the
//! simulator runs only when `mode = "simulator"` or `serve --demo` asks for it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GepgMode {
    /// No GePG at all (the default): renewals queue their bill until GePG is configured,
    /// callbacks answer 503, `/health` says why. Nothing here reaches or imitates GePG.
    Disabled,
    /// An in-process GePG that assigns control numbers and never reaches the network.
    Simulator,
    /// The real GePG, with signed messages.
    Live,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GepgConfig {
    pub mode: GepgMode,
    /// Base URL of GePG (`https://uat1.gepg.go.tz`). Empty in simulator mode = the simulator
    /// built into this server (`/gepg-sim`).
    pub url: String,
    /// SP code used in bills when a product has none (`AccCodePremiums` blank); see
    /// `payments::spcode` for the decision and what happens when this is empty too.
    pub sp_code: String,
    pub sub_sp_code: String,
    /// System id issued by GePG (`SpSysId`).
    pub sp_sys_id: String,
    /// GFS revenue code of bill items.
    pub gfs_code: String,
    /// Our PKCS#12 keystore (private key that signs requests and acks) and its password.
    /// Empty in simulator mode = a key generated at start.
    pub key_p12: PathBuf,
    pub key_password: String,
    /// GePG's PKCS#12 file (its certificate verifies callbacks) and its password.
    pub gepg_cert_p12: PathBuf,
    pub gepg_cert_password: String,
    /// Simulator only: the PKCS#12 keystore the simulated GePG signs with (empty = generated).
    pub simulator_key_p12: PathBuf,
    pub simulator_key_password: String,
    /// Simulator only: allow a listen address other than loopback. The simulator pays any
    /// control number for anyone who can reach `/gepg-sim/pay`, so it is refused on a
    /// reachable address unless this is set.
    pub simulator_allow_remote: bool,
    /// Largest callback body accepted, bytes.
    pub max_body_bytes: usize,
    /// Seconds to wait for GePG to answer a request before retrying it.
    pub request_timeout_secs: u64,
    /// Pre-requested control numbers per product: request more when fewer than
    /// `pool_low_water` are free (0 disables the pool), `pool_batch` at a time.
    pub pool_low_water: u32,
    pub pool_batch: u32,
    /// Days a member's bill stays payable; pool bills stay payable `pool_bill_expiry_days`.
    pub bill_expiry_days: u32,
    pub pool_bill_expiry_days: u32,
    /// Daily reconciliation of the previous day, at this East Africa time (`HH:MM`);
    /// empty disables the job (`payments reconcile --date D` still works).
    pub reconcile_at: String,
    /// Secret of the direct mobile-money callback (`X-Signature` = hex HMAC-SHA256 of the
    /// body); empty disables that endpoint.
    pub mobile_money_secret: String,
}

impl Default for GepgConfig {
    fn default() -> Self {
        GepgConfig {
            mode: GepgMode::Disabled,
            url: String::new(),
            sp_code: "SP111".to_string(),
            sub_sp_code: "1001".to_string(),
            sp_sys_id: "CHFIMIS001".to_string(),
            gfs_code: "140206".to_string(),
            key_p12: PathBuf::new(),
            key_password: String::new(),
            gepg_cert_p12: PathBuf::new(),
            gepg_cert_password: String::new(),
            simulator_key_p12: PathBuf::new(),
            simulator_key_password: String::new(),
            simulator_allow_remote: false,
            max_body_bytes: 256 * 1024,
            request_timeout_secs: 30,
            pool_low_water: 10,
            pool_batch: 20,
            bill_expiry_days: 30,
            pool_bill_expiry_days: 1095,
            reconcile_at: "04:00".to_string(),
            mobile_money_secret: String::new(),
        }
    }
}
