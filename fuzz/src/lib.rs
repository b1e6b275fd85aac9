//! What several fuzz targets share: one Tokio runtime, the shipped SMS templates, and a
//! whole application state (temporary store, USSD engine, GePG payments in simulator mode)
//! built once per fuzzing process from the repository's own menus and templates.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use imis_gateway::config::Config;
use imis_gateway::server::AppState;
use imis_gateway::sms::Templates;
use imis_gateway::store::{Store, StoreOptions};

/// The repository root (the fuzz crate sits in `fuzz/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ has a parent")
        .to_path_buf()
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

pub fn templates() -> &'static Arc<Templates> {
    static T: OnceLock<Arc<Templates>> = OnceLock::new();
    T.get_or_init(|| {
        Arc::new(Templates::load(&repo().join("sms-templates")).expect("SMS templates"))
    })
}

/// The state the HTTP handlers run against, with the demo data seeded (so that USSD
/// journeys reach real families and policies).
pub fn app_state() -> &'static AppState {
    static S: OnceLock<(tempfile::TempDir, AppState)> = OnceLock::new();
    &S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.store.data_dir = dir.path().join("data");
        config.sms.templates_dir = repo().join("sms-templates");
        config.ussd.menus_dir = repo().join("menus");
        let store = Store::open_temporary_with(StoreOptions {
            cache_capacity: 16 << 20,
            flush_every_ms: None,
            ..StoreOptions::default()
        })
        .expect("temporary store");
        imis_gateway::demo::seed_if_empty(&store, &imis_gateway::demo::DemoOptions::default())
            .expect("demo data");
        let ussd = imis_gateway::ussd::Engine::new(store.clone(), &config, templates().clone())
            .expect("USSD engine");
        let payments = runtime().block_on(async {
            imis_gateway::payments::Payments::new(
                store.clone(),
                &config,
                templates().clone(),
                "http://127.0.0.1:9",
            )
            .expect("payments")
        });
        let mo = imis_gateway::sms::MoPipeline::new(templates().clone(), Vec::new());
        let state = AppState {
            store,
            config: Arc::new(config),
            started: Instant::now(),
            ussd: Arc::new(ussd),
            payments: Arc::new(payments),
            mo: Arc::new(mo),
            smpp: Arc::default(),
        };
        (dir, state)
    })
    .1
}
