//! The demo world as the officer SMS tests start from: seeded as `serve --demo` does, with
//! EO0001 speaking Kiswahili (the demo's default) and EO0002 switched to English, so that
//! both reply languages are covered.
#![allow(dead_code)]

use imis_gateway::demo;
use imis_gateway::domain::Language;
use imis_gateway::store::{Store, StoreOptions, TxResult};

/// A data directory with the demo store, EO0002 English-speaking, flushed and closed.
pub fn seeded_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    demo::seed_if_empty(&store, &demo::DemoOptions::default()).unwrap();
    let mut eo2 = store.officer_by_code("EO0002").unwrap().unwrap();
    eo2.language = Language::En;
    store
        .write(|tx| -> TxResult<()> {
            tx.put_officer(&eo2)?;
            Ok(())
        })
        .unwrap();
    store.flush().unwrap();
    dir
}
