//! imis-gateway: a USSD/SMS-first application server for openIMIS (Tanzania CHF).
//!
//! # Layout
//!
//! - [`domain`]: the openIMIS entities and business rules (CHFID, policy dates, policy value,
//!   activation, coverage letters, renewal prompts). Pure functions; no I/O, no clock.
//! - [`store`]: the embedded sled store: typed, versioned records, secondary indexes,
//!   multi-tree business transactions, the durable outbox, and group-committed flushes.
//! - [`config`]: the TOML configuration with `IMIS_GATEWAY_<SECTION>__<KEY>` overrides.
//! - [`demo`]: deterministic demo and scale data (`--demo`, `demo-data`).
//! - [`sms`]: outbound SMS as data: the outbox record and the editable templates.
//! - [`server`]: the HTTP edge (`/health`, and the gateway adapters later issues add).
//! - [`shutdown`]: graceful shutdown: one signal fans out to every task, which drains and
//!   lets the store flush before the process exits.
//! - [`cli`]: the command line, one file per subcommand; `main.rs` only dispatches.

pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod server;
pub mod shutdown;
pub mod sms;
pub mod store;
