//! `imis-gateway serve`: build every part once, start them, stop them gracefully on
//! SIGINT/SIGTERM.
//!
//! The wiring lives here and nowhere else: templates, menus, the officer grammar, the MO
//! pipeline and its limiter are built once, before the port is bound, so a bad directory or
//! file stops start-up with one line instead of failing a request later.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::StoreArgs;
use crate::config::{Config, GepgMode, Secret, SmsAuthScheme};
use crate::demo;
use crate::server::{self, AppState};
use crate::shutdown::{self, Shutdown};
use crate::sms::router::MoHandler;
use crate::sms::{MoPipeline, Templates};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on (overrides [server] listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the admin listener (overrides [admin] listen; it needs [admin] token).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Seed demo data if the store is empty (see README for the demo CHFIDs and officer);
    /// turns the GePG simulator on unless [gepg] mode says otherwise, and accepts the demo
    /// inbound-SMS secret when no aggregator is configured.
    #[arg(long)]
    pub demo: bool,
}

/// What `serve` builds from the configuration before it starts anything.
struct Parts {
    templates: Arc<Templates>,
    ussd: Arc<crate::ussd::Engine>,
    officers: Option<crate::officer::Officers>,
    mo: Arc<MoPipeline>,
    smpp: Arc<crate::smpp::metrics::Metrics>,
}

impl Parts {
    fn build(config: &Config, store: &Store) -> anyhow::Result<Parts> {
        let templates = Arc::new(super::load_templates(config)?);
        // One guard for every channel: the caps count SMS to unknown phones in all.
        let guard = Arc::new(crate::sms::cost_guard::CostGuard::new(
            store.clone(),
            &config.sms_guard,
        ));
        let ussd = Arc::new(
            crate::ussd::Engine::new(store.clone(), config, templates.clone())
                .context("starting the USSD engine")?
                .with_cost_guard(guard.clone()),
        );
        let officers = if config.officer.enabled {
            Some(
                crate::officer::Officers::from_config(config)
                    .context("loading the officer command grammar")?,
            )
        } else {
            None
        };
        // Officer commands take an officer's MO only when their worker runs; otherwise
        // every MO gets HELP.
        // Facility staff's HAKIKI/VERIFY first: it takes only those, from staff phones.
        let mut handlers: Vec<Arc<dyn MoHandler>> =
            vec![Arc::new(crate::facility::sms::VerifyCommand)];
        // Screens in the same order: the facility's takes only HAKIKI/VERIFY from staff.
        let mut screens: Vec<Arc<dyn crate::sms::router::MoScreen>> =
            vec![Arc::new(crate::facility::screen::FacilityScreen)];
        if let Some(o) = &officers {
            handlers.push(Arc::new(crate::officer::SmsCommands));
            screens.push(Arc::new(crate::officer::PinScreen::new(o.clone())));
        }
        let screen = Arc::new(crate::sms::router::Screens(screens));
        let mo = MoPipeline::new(templates.clone(), handlers)
            .with_screen(Some(screen))
            .with_limit(crate::ratelimit::sms_mo(&config.limits))
            .with_cost_guard(guard);
        Ok(Parts {
            templates,
            ussd,
            officers,
            mo: Arc::new(mo),
            smpp: Arc::default(),
        })
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.store.load()?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(admin) = args.admin_listen {
        config.admin.listen = admin.to_string();
    }
    if args.demo {
        demo_defaults(&mut config);
    }
    check_exposure(&config)?;
    let store = Store::open(&config.store.data_dir, config.store.store_options())
        .with_context(|| format!("opening store at {}", config.store.data_dir.display()))?;
    if args.demo {
        if config.mirror.enabled {
            demo_with_mirror(&store, &config.mirror.dsn).await?;
        } else {
            seed_demo(&store)?;
        }
    }
    let parts = Parts::build(&config, &store)?;
    let (listeners, admin_bound) = bind(&config).await?;
    let bound = listeners
        .public
        .local_addr()
        .context("reading the bound address")?;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let shutdown = Shutdown::new();
    spawn_messaging(&config, &store, &parts, &shutdown)?;
    // In simulator mode the payment workers talk to our own /gepg-sim.
    let payments = spawn_payments(
        &config,
        &store,
        &parts,
        &format!("http://{bound}"),
        &shutdown,
    )?;
    spawn_mirror(&config, &store, &shutdown);
    let state = AppState {
        store: store.clone(),
        config: Arc::new(config),
        started: Instant::now(),
        ussd: parts.ussd,
        payments,
        mo: parts.mo,
        smpp: parts.smpp,
    };
    let http = tokio::spawn(server::run(listeners, state, shutdown.signal()));
    let os_signal = shutdown::os_signal();
    // Printed on stdout so scripts and tests can wait for readiness (admin line first).
    if let Some(admin) = admin_bound {
        println!("imis-gateway admin on {admin}");
    }
    println!("imis-gateway ready on {bound}");

    let why = os_signal.await;
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

/// `--demo`: the GePG simulator unless a mode was chosen, and the documented demo secret
/// for `POST /sms/inbound` unless an aggregator is configured.
fn demo_defaults(config: &mut Config) {
    if config.gepg.mode == GepgMode::Disabled {
        config.gepg.mode = GepgMode::Simulator;
    }
    if config.inbound_sms.credentials().is_empty() {
        config.inbound_sms.scheme = SmsAuthScheme::Header;
        config.inbound_sms.secret = Secret::new(server::sms_inbound::DEMO_SECRET);
        tracing::warn!(
            "--demo: POST /sms/inbound accepts the demo secret (X-Gateway-Secret, see README); \
             configure [inbound_sms] before real traffic"
        );
    }
}

/// Refuses a simulator on a reachable address; says which HTTP routes are off.
fn check_exposure(config: &Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    if config.gepg.mode == GepgMode::Simulator
        && !listen.ip().is_loopback()
        && !config.gepg.simulator_allow_remote
    {
        anyhow::bail!(
            "[gepg] mode = \"simulator\" on {listen}: the simulator pays any control number for \
             whoever reaches /gepg-sim/pay, so it listens on loopback only (set [gepg] \
             simulator_allow_remote = true to override)"
        );
    }
    if config.inbound_sms.credentials().is_empty() {
        tracing::warn!(
            "inbound SMS over HTTP is off: no [inbound_sms] secret (POST /sms/inbound answers 503)"
        );
    }
    Ok(())
}

/// The public listener and, with an address and a token, the admin one; the connection cap
/// fitted to the open-file limit (raised to its hard limit first).
async fn bind(config: &Config) -> anyhow::Result<(server::Listeners, Option<SocketAddr>)> {
    let nofile = server::conn::raise_nofile(NOFILE_WANTED);
    let limits = Arc::new(server::conn::ConnLimits::new(
        Duration::from_secs(config.server.header_read_timeout_secs),
        config.server.max_connections,
        nofile,
    ));
    let public = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let a = &config.admin;
    let admin = match (a.listen_addr()?, a.token.is_set()) {
        (None, _) => None,
        (Some(_), false) => {
            tracing::warn!("admin listener off: no [admin] token (IMIS_GATEWAY_ADMIN__TOKEN)");
            None
        }
        (Some(addr), true) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the admin listener {addr}"))?;
            let go_live = a.go_live_date()?;
            let admin = server::admin::Admin::new(a, go_live, limits.cap());
            Some((l, Arc::new(admin)))
        }
    };
    let admin_bound = match &admin {
        Some((l, _)) => Some(l.local_addr().context("reading the admin address")?),
        None => None,
    };
    let listeners = server::Listeners {
        public,
        admin,
        limits,
    };
    Ok((listeners, admin_bound))
}

/// Open files the server asks for at start (up to the hard limit): the systemd unit should
/// say `LimitNOFILE=65536`.
const NOFILE_WANTED: u64 = 65536;

/// Aux marker: the demo world is seeded and not yet all queued for the central database.
const DEMO_QUEUE_NS: &str = "demo.mirror";
const DEMO_QUEUE_KEY: &[u8] = b"queue-pending";

/// `--demo` with the mirror on: the demo world must exist centrally too, or `mirror verify`
/// and every mirrored write would meet rows the central database never had. An empty
/// central database gets our demo world (queued for the mirror); one that has families
/// already is imported instead, so the store starts as a copy of it.
async fn demo_with_mirror(store: &Store, dsn: &str) -> anyhow::Result<()> {
    let pending = store.aux_get(DEMO_QUEUE_NS, DEMO_QUEUE_KEY)?.is_some();
    if !pending && !store.products()?.is_empty() {
        tracing::info!("store already has data; demo seeding skipped");
        return Ok(());
    }
    let client = crate::mirror::connect(dsn).await.context(
        "--demo with the mirror on reads the central database at start (to import the \
         demo world from it, or to seed it there): it is unreachable",
    )?;
    if !pending {
        let families = crate::mirror::central::current_families(&client)
            .await
            .context("counting the central database's families")?;
        if families > 0 {
            let counts = crate::mirror::pull::import(&client, store, |_, _| {})
                .await
                .context("importing the central database as the demo world")?;
            let rows: u64 = counts.iter().map(|(_, n)| n).sum();
            tracing::info!(
                families,
                rows,
                "demo: the central database's world imported"
            );
            return Ok(());
        }
        // Marked before seeding: a crash from here on finishes the queueing at next start.
        store.aux_put(DEMO_QUEUE_NS, DEMO_QUEUE_KEY, b"1")?;
        store.flush()?;
        seed_demo(store)?;
    }
    let queued = store
        .queue_all_for_mirror()
        .context("queueing the demo world for the central database")?;
    // What the empty schema ships (a few sample locations) joins the store as pulled rows,
    // never queued back, so the two sides hold the same world.
    // Not fatal: a database the writer refuses (its /health says why) fails this read too.
    let pulled = match crate::mirror::pull::pull_once(&client, store).await {
        Ok(r) => r.applied,
        Err(e) => {
            tracing::warn!(error = %e, "demo: the central database's own rows not read");
            0
        }
    };
    store.aux_remove(DEMO_QUEUE_NS, DEMO_QUEUE_KEY)?;
    store.flush()?;
    tracing::info!(
        queued,
        central_rows = pulled,
        "demo: world queued for the empty central database"
    );
    Ok(())
}

fn seed_demo(store: &Store) -> anyhow::Result<()> {
    let seeded =
        demo::seed_if_empty(store, &demo::DemoOptions::default()).context("seeding demo data")?;
    match seeded {
        Some(summary) => tracing::info!(%summary, "demo data seeded"),
        None => tracing::info!("store already has data; demo seeding skipped"),
    }
    Ok(())
}

/// USSD housekeeping, officer commands, SMPP and the daily jobs.
fn spawn_messaging(
    config: &Config,
    store: &Store,
    parts: &Parts,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    tokio::spawn(crate::ussd::tasks::reload_on_sighup(
        parts.ussd.clone(),
        shutdown.signal(),
    ));
    let sweep_every = Duration::from_secs(config.ussd.session_ttl_secs.clamp(1, 30));
    tokio::spawn(crate::ussd::tasks::sweep_sessions(
        parts.ussd.clone(),
        sweep_every,
        shutdown.signal(),
    ));
    if let Some(officers) = &parts.officers {
        crate::officer::worker::spawn(officers.clone(), store.clone(), shutdown.signal());
    }
    if config.smpp.enabled {
        crate::smpp::spawn(
            config,
            store.clone(),
            parts.mo.clone(),
            parts.smpp.clone(),
            Some(parts.ussd.clone()),
            shutdown,
        );
    }
    if config.scheduler.enabled {
        let scheduler = crate::scheduler::Scheduler::new(
            store.clone(),
            parts.templates.clone(),
            config.scheduler.clone(),
            config.ussd.service_code.clone(),
        )
        .context("starting the scheduler")?;
        tokio::spawn(crate::scheduler::run_loop(
            Arc::new(scheduler),
            shutdown.signal(),
        ));
    }
    Ok(())
}

/// GePG payments: keys; the bill worker (and pool top-up) and the daily reconciliation run
/// until shutdown.
fn spawn_payments(
    config: &Config,
    store: &Store,
    parts: &Parts,
    self_url: &str,
    shutdown: &Shutdown,
) -> anyhow::Result<Arc<crate::payments::Payments>> {
    let payments = Arc::new(
        crate::payments::Payments::new(store.clone(), config, parts.templates.clone(), self_url)
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
    Ok(payments)
}

/// The mirror writer and, when asked for, the periodic pull.
fn spawn_mirror(config: &Config, store: &Store, shutdown: &Shutdown) {
    let m = &config.mirror;
    if !m.enabled {
        return;
    }
    let writer = crate::mirror::MirrorWriter::new(
        store.clone(),
        m.dsn.clone(),
        crate::mirror::WriterOptions::from_config(m),
    );
    tokio::spawn(writer.run(shutdown.signal()));
    if m.pull_interval_secs > 0 {
        let every = Duration::from_secs(m.pull_interval_secs);
        let pull =
            crate::mirror::pull::run_puller(store.clone(), m.dsn.clone(), every, shutdown.signal());
        tokio::spawn(pull);
    }
}
