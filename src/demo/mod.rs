//! Deterministic demo and scale data.
//!
//! Owns: the demo world (a Dodoma region tree, three products, three officers, the named
//! demo families the README lists) and the generated families for scale runs.
//! Must never: write into a store that already holds data, or depend on anything but its
//! seed and its `today` (the same options always give the same records).
//!
//! Named families (heads), relative to `today`:
//! - `070707070`: Active CHF01 policy, expiring in about eight months.
//! - `100000014`: Expired CHF01 policy (expired about a month ago).
//! - `100000025`: previous policy expired; an Idle (unpaid) renewal with a control number.
//!
//! Demo officer: code `EO0001`, phone `255754000001`, PIN `1234`.

use std::fmt;

use chrono::{Duration, NaiveDate, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::domain::period::policy_period;
use crate::domain::value::{policy_value, MemberForValue};
use crate::domain::{
    pin, Chfid, ControlNumber, ControlNumberStatus, CycleStart, Discount, Family, Gender, Id,
    Insuree, InsureePolicy, Language, Location, LocationKind, Money, Msisdn, Officer, PayType,
    Payment, PaymentDetail, PaymentStatus, Policy, PolicyStage, PolicyStatus, Premium, Product,
    Relationship, SmsPreference,
};
use crate::store::{BulkWriter, Store, StoreError};

mod families;
mod reference;

pub const DEFAULT_SEED: u64 = 20_260_101;
pub const DEMO_OFFICER_CODE: &str = "EO0001";
pub const DEMO_OFFICER_PHONE: &str = "255754000001";
pub const DEMO_OFFICER_PIN: &str = "1234";
pub const ACTIVE_CHFID: &str = "070707070";
pub const EXPIRED_CHFID: &str = "100000014";
pub const IDLE_RENEWAL_CHFID: &str = "100000025";
/// Control number of the Idle renewal's payment intent.
pub const IDLE_RENEWAL_CONTROL_NUMBER: &str = "991110000025";

/// Generated members take CHFIDs from this base upwards, clear of the named ones.
const GENERATED_CHFID_BASE: u32 = 20_000_000;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Generated families, besides the named ones.
    pub families: u64,
    pub seed: u64,
    pub today: NaiveDate,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            families: 200,
            seed: DEFAULT_SEED,
            today: today_eat(),
        }
    }
}

/// Today's date in East Africa Time (UTC+3), the scheme's civil date.
pub fn today_eat() -> NaiveDate {
    crate::domain::eat_date(Utc::now())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub families: u64,
    pub insurees: u64,
    pub policies: u64,
    pub premiums: u64,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeded {} families, {} insurees, {} policies, {} premiums",
            self.families, self.insurees, self.policies, self.premiums
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("demo data is inconsistent: {0}")]
    Rule(String),
}

/// Seeds the demo world unless the store already has products. Returns what was written.
pub fn seed_if_empty(
    store: &Store,
    options: &DemoOptions,
) -> Result<Option<DemoSummary>, DemoError> {
    if !store.products()?.is_empty() {
        return Ok(None);
    }
    let mut world = World::new(store, options);
    let summary = store.bulk(|bulk| world.write(bulk))??;
    store.flush()?;
    Ok(Some(summary))
}

const LAST_NAMES: &[&str] = &[
    "Mwakyusa", "Kimaro", "Mushi", "Hamisi", "Mollel", "Massawe", "Mbwambo", "Njau", "Swai",
    "Lyimo", "Mwita", "Chacha", "Nyerere", "Kombo", "Salim", "Mrema", "Shirima", "Temba", "Mwanga",
    "Kisanga",
];
const MALE_NAMES: &[&str] = &[
    "Juma", "Baraka", "Hamisi", "Rashidi", "Emmanuel", "Joseph", "Daudi", "Salum", "Omari",
    "Petro", "Yusufu", "Ally",
];
const FEMALE_NAMES: &[&str] = &[
    "Neema",
    "Amina",
    "Rehema",
    "Zawadi",
    "Mwanaisha",
    "Upendo",
    "Halima",
    "Faraja",
    "Asha",
    "Grace",
    "Tumaini",
    "Mariamu",
];

struct World<'a> {
    store: &'a Store,
    options: &'a DemoOptions,
    rng: ChaCha8Rng,
    next_generated: u32,
    villages: Vec<Id>,
    chf01: Option<Product>,
    officers: Vec<Id>,
    summary: DemoSummary,
}

/// One member to create: the names and facts the generator chose.
struct NewMember {
    chfid: Chfid,
    last_name: String,
    other_names: String,
    dob: NaiveDate,
    gender: Gender,
    relationship: Option<Relationship>,
    phone: Option<Msisdn>,
}

impl<'a> World<'a> {
    fn new(store: &'a Store, options: &'a DemoOptions) -> World<'a> {
        World {
            store,
            options,
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            next_generated: GENERATED_CHFID_BASE,
            villages: Vec::new(),
            chf01: None,
            officers: Vec::new(),
            summary: DemoSummary::default(),
        }
    }

    fn id(&self) -> Result<Id, StoreError> {
        self.store.next_id()
    }

    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    fn write(&mut self, bulk: &mut BulkWriter) -> Result<DemoSummary, DemoError> {
        self.locations(bulk)?;
        self.products(bulk)?;
        self.officers(bulk)?;
        self.named_families(bulk)?;
        for _ in 0..self.options.families {
            self.generated_family(bulk)?;
        }
        Ok(self.summary.clone())
    }
}
