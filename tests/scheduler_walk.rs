//! The scheduler over 60 days of a demo store with an injected clock: the exact set of
//! officer prompts and family reminders, a restart in the middle, a 2-day outage, nothing
//! twice, nothing skipped, nothing in quiet hours.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};

use imis_gateway::config::SchedulerConfig;
use imis_gateway::demo::{self, DemoOptions};
use imis_gateway::domain::renewal::{effective_officer, needs_renewal_prompt};
use imis_gateway::domain::{Language, PolicyStatus};
use imis_gateway::scheduler::clock::eat;
use imis_gateway::scheduler::prompts::{Prompt, PROMPTS_NS};
use imis_gateway::scheduler::{Job, Scheduler};
use imis_gateway::sms::{self, Templates, SMS_TOPIC};
use imis_gateway::store::{codec, Store, StoreOptions};

const START: (i32, u32, u32) = (2026, 3, 1);
const DAYS: i64 = 60;
const RESTART_DAY: i64 = 30;
const OUTAGE: [i64; 2] = [40, 41];

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(START.0, START.1, START.2).unwrap()
}

fn open(dir: &Path) -> Scheduler {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let templates =
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates")).unwrap();
    Scheduler::new(
        store,
        Arc::new(templates),
        SchedulerConfig::default(),
        "*152*00#".into(),
    )
    .unwrap()
}

fn eat_time(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    eat()
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

#[derive(Debug, Default)]
struct Expected {
    /// `policy:event` → (phone, language).
    reminders: BTreeMap<String, (String, Language)>,
    /// policy → (window, officer id).
    prompts: BTreeMap<u64, (NaiveDate, Option<u64>)>,
}

/// The oracle, from the store as seeded: written from the rules in the issue, not from the
/// scheduler's code paths.
fn expected(store: &Store) -> Expected {
    let (first, last) = (start(), start() + Duration::days(DAYS - 1));
    let officers: HashMap<u64, _> = store
        .officers()
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut e = Expected::default();
    let mut policies = Vec::new();
    store
        .for_each_policy(|p| {
            policies.push(p);
            Ok(true)
        })
        .unwrap();
    for p in policies {
        if !matches!(p.status, PolicyStatus::Active | PolicyStatus::Expired) {
            continue;
        }
        let fam_policies = store.family_policies(p.family).unwrap();
        // Any day after expiry is within the interval, so this only asks "no successor?".
        if !needs_renewal_prompt(&p, &fam_policies, p.expiry_date, 0) {
            continue;
        }
        let prompt_day = first.max(p.expiry_date - Duration::days(14));
        if prompt_day <= last {
            let officer = p
                .officer
                .and_then(|id| effective_officer(|o| officers.get(&o), id, prompt_day))
                .map(|o| o.id);
            e.prompts.insert(p.id, (prompt_day, officer));
        }
        let family = store.family(p.family).unwrap().unwrap();
        let head = store.insuree(family.head).unwrap().unwrap();
        let (true, Some(phone)) = (family.sms.approved, head.phone) else {
            continue;
        };
        for (event, day) in [
            ("before", p.expiry_date - Duration::days(5)),
            ("on-day", p.expiry_date),
            ("after", p.expiry_date + Duration::days(5)),
        ] {
            if first <= day && day <= last {
                e.reminders.insert(
                    format!("reminder:{}:{event}", p.id),
                    (phone.to_string(), family.sms.language),
                );
            }
        }
    }
    e
}

#[test]
fn sixty_days_with_a_restart_and_an_outage_send_each_prompt_and_reminder_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut sched = open(dir.path());
    let seeded = demo::seed_if_empty(
        sched.store(),
        &DemoOptions {
            families: 300,
            seed: 7,
            today: start(),
        },
    )
    .unwrap();
    assert!(seeded.is_some());
    let want = expected(sched.store());
    assert!(
        want.reminders.len() > 20 && want.prompts.len() > 20,
        "the demo store should give the walk work to do: {} reminders, {} prompts",
        want.reminders.len(),
        want.prompts.len()
    );

    let mut sms_ticks = Vec::new();
    let mut window_runs: BTreeMap<(&str, NaiveDate), u32> = BTreeMap::new();
    for day in 0..DAYS {
        if OUTAGE.contains(&day) {
            continue;
        }
        if day == RESTART_DAY {
            drop(sched);
            sched = open(dir.path());
        }
        let date = start() + Duration::days(day);
        for hour in 0..24 {
            let now = eat_time(date, hour);
            for r in sched.tick(now).unwrap() {
                *window_runs.entry((r.job, r.window.unwrap())).or_default() += 1;
                if r.sms > 0 {
                    sms_ticks.push(now);
                }
            }
        }
    }

    // Every window of every job ran exactly once, the outage days included (caught up).
    for job in Job::ALL {
        for day in 0..DAYS {
            let date = start() + Duration::days(day);
            assert_eq!(
                window_runs.get(&(job.name(), date)).copied(),
                Some(1),
                "{} window {date}",
                job.name()
            );
        }
    }
    assert_eq!(
        window_runs.len(),
        Job::ALL.len() * DAYS as usize,
        "no window outside the walk ran: {window_runs:?}"
    );
    // No SMS was produced in quiet hours (20:00–07:00 EAT).
    for t in &sms_ticks {
        let h = t.with_timezone(&eat()).hour();
        assert!((7..20).contains(&h), "SMS produced at {t} ({h}:00 EAT)");
    }

    // The outbox holds exactly the expected reminders, each once, to the right phone, in
    // the family's language; plus one digest per officer per prompting day.
    let store = sched.store();
    let items = store
        .claim(
            SMS_TOPIC,
            1_000_000,
            std::time::Duration::from_secs(60),
            Utc::now(),
        )
        .unwrap();
    let mut reminders = BTreeMap::new();
    let mut digests = BTreeSet::new();
    for item in &items {
        let msg = sms::outbound::decode(&item.payload).unwrap();
        if item.key.starts_with("reminder:") {
            let earlier = reminders.insert(item.key.clone(), (msg.to.to_string(), msg.language));
            assert!(earlier.is_none(), "{} twice", item.key);
            let marker = match msg.language {
                Language::Sw => "bima",
                Language::En => "cover",
            };
            assert!(
                msg.text.contains(marker),
                "{:?} in {:?}",
                msg.text,
                msg.language
            );
            assert!(msg.text.contains("*152*00#"), "{}", msg.text);
        } else if item.key.starts_with("renewal-digest:") {
            assert!(digests.insert(item.key.clone()), "{} twice", item.key);
        } else {
            panic!("unexpected SMS {}", item.key);
        }
    }
    assert_eq!(reminders, want.reminders);

    // Prompts: each expected policy prompted once, on the expected day, for the officer
    // after substitution; one digest per (officer, day) with prompts, for reachable officers.
    let mut got_prompts = BTreeMap::new();
    for (_, value) in store.aux_scan(PROMPTS_NS, b"").unwrap() {
        let p: Prompt = codec::decode(&value).unwrap();
        got_prompts.insert(p.policy, (p.date, p.officer));
    }
    assert_eq!(got_prompts, want.prompts);
    let officers: HashMap<u64, _> = store
        .officers()
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let want_digests: BTreeSet<String> = want
        .prompts
        .values()
        .filter_map(|(day, officer)| {
            let o = officers.get(&(*officer)?)?;
            (o.phone_communication && o.phone.is_some())
                .then(|| format!("renewal-digest:{}:{day}", o.id))
        })
        .collect();
    assert!(!want_digests.is_empty());
    assert_eq!(digests, want_digests);

    // Policies past their expiry are no longer Active.
    let end = start() + Duration::days(DAYS - 1);
    store
        .for_each_policy(|p| {
            assert!(
                !(p.status == PolicyStatus::Active && p.expiry_date < end),
                "policy {} expired {} but is still Active",
                p.id,
                p.expiry_date
            );
            Ok(true)
        })
        .unwrap();

    // Re-running every job by hand for every day adds nothing.
    let before = store.pending_count(SMS_TOPIC).unwrap();
    for job in Job::ALL {
        for day in 0..DAYS {
            let date = start() + Duration::days(day);
            let r = sched
                .run_window(job, date, eat_time(date, 10), false)
                .unwrap();
            assert_eq!((r.changed, r.sms), (0, 0), "{}", r.summary());
        }
    }
    assert_eq!(store.pending_count(SMS_TOPIC).unwrap(), before);
}

#[test]
fn a_dry_run_lists_what_it_would_send_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sched = open(dir.path());
    demo::seed_if_empty(
        sched.store(),
        &DemoOptions {
            families: 100,
            seed: 3,
            today: start(),
        },
    )
    .unwrap();
    let day = start() + Duration::days(20);
    let mut planned = 0;
    for job in Job::ALL {
        let r = sched.run_window(job, day, eat_time(day, 10), true).unwrap();
        planned += r.planned.len();
        assert!(r.dry_run);
    }
    assert!(
        planned > 0,
        "the demo store has policies near expiry on day 20"
    );
    assert_eq!(sched.store().pending_count(SMS_TOPIC).unwrap(), 0);
    assert!(sched.store().aux_scan(PROMPTS_NS, b"").unwrap().is_empty());
    for job in Job::ALL {
        assert_eq!(sched.state(job).unwrap().last_window, None);
    }
}
