//! `imis-gateway serve`: start every component, stop them gracefully on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::StoreArgs;
use crate::demo;
use crate::server::{self, AppState};
use crate::shutdown::{self, Shutdown};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on (overrides [server] listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Seed demo data if the store is empty (see README for the demo CHFIDs and officer).
    #[arg(long)]
    pub demo: bool,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.store.load()?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let store = Store::open(&config.store.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?;
    if args.demo {
        let seeded = demo::seed_if_empty(&store, &demo::DemoOptions::default())
            .context("seeding demo data")?;
        match seeded {
            Some(summary) => tracing::info!(%summary, "demo data seeded"),
            None => tracing::info!("store already has data; demo seeding skipped"),
        }
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let shutdown = Shutdown::new();
    let ussd = Arc::new(
        crate::ussd::Engine::new(store.clone(), &config).context("starting the USSD engine")?,
    );
    crate::sms::inbound::limit_per_phone(&config.limits);
    tokio::spawn(crate::ussd::tasks::reload_on_sighup(
        ussd.clone(),
        shutdown.signal(),
    ));
    let sweep_every = Duration::from_secs(config.ussd.session_ttl_secs.clamp(1, 30));
    tokio::spawn(crate::ussd::tasks::sweep_sessions(
        ussd.clone(),
        sweep_every,
        shutdown.signal(),
    ));
    if config.officer.enabled {
        let officers = crate::officer::Officers::from_config(&config)
            .context("loading the officer command grammar")?;
        crate::officer::worker::spawn(officers, store.clone(), shutdown.signal());
    }
    if config.smpp.enabled {
        let templates = crate::sms::Templates::load(&config.sms.templates_dir)
            .context("loading SMS templates")?;
        crate::smpp::spawn(
            &config,
            store.clone(),
            templates,
            Some(ussd.clone()),
            &shutdown,
        );
    }
    if config.scheduler.enabled {
        let templates = crate::sms::Templates::load(&config.sms.templates_dir)
            .context("loading SMS templates for the scheduler")?;
        let scheduler = crate::scheduler::Scheduler::new(
            store.clone(),
            Arc::new(templates),
            config.scheduler.clone(),
            config.ussd.service_code.clone(),
        )
        .context("starting the scheduler")?;
        tokio::spawn(crate::scheduler::run_loop(
            Arc::new(scheduler),
            shutdown.signal(),
        ));
    }
    // GePG payments: keys, templates; the bill worker (and pool top-up) and the daily
    // reconciliation run until shutdown. In simulator mode they talk to our own /gepg-sim.
    let self_url = format!("http://{bound}");
    let payments = Arc::new(
        crate::payments::Payments::new(store.clone(), &config, &self_url)
            .context("starting GePG payments")?,
    );
    tokio::spawn(crate::payments::bill::run_worker(
        payments.clone(),
        shutdown.signal(),
    ));
    tokio::spawn(crate::payments::reconcile::run_daily(
        payments.clone(),
        shutdown.signal(),
    ));
    let state = AppState {
        store: store.clone(),
        config: Arc::new(config),
        started: Instant::now(),
        ussd,
        payments,
    };
    if state.config.mirror.enabled {
        let m = &state.config.mirror;
        let writer =
            crate::mirror::MirrorWriter::new(store.clone(), m.dsn.clone(), m.writer_options());
        tokio::spawn(writer.run(shutdown.signal()));
        if m.pull_interval_secs > 0 {
            let every = Duration::from_secs(m.pull_interval_secs);
            let pull = crate::mirror::pull::run_puller(
                store.clone(),
                m.dsn.clone(),
                every,
                shutdown.signal(),
            );
            tokio::spawn(pull);
        }
    }
    let http = tokio::spawn(server::run(listener, state, shutdown.signal()));
    // Printed on stdout so scripts and tests can wait for readiness.
    println!("imis-gateway ready on {bound}");

    let why = shutdown::os_signal().await;
    tracing::info!(signal = why, "shutting down: draining in-flight work");
    if tokio::time::timeout(grace, shutdown.drain()).await.is_err() {
        tracing::warn!(?grace, "drain took longer than the grace period");
    }
    match tokio::time::timeout(grace, http).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http edge stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "http edge task failed"),
        Err(_) => tracing::warn!("http edge did not stop within the grace period"),
    }
    store.flush().context("final flush of the store")?;
    tracing::info!("stopped cleanly");
    Ok(())
}
