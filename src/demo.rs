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

    fn locations(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let region = Location {
            id: self.id()?,
            uuid: self.uuid(),
            code: "R01".into(),
            name: "Dodoma".into(),
            kind: LocationKind::Region,
            parent: None,
        };
        bulk.put_location(&region)?;
        for (d, district_name) in ["Kongwa", "Mpwapwa"].iter().enumerate() {
            let district = Location {
                id: self.id()?,
                uuid: self.uuid(),
                code: format!("D0{}", d + 1),
                name: (*district_name).into(),
                kind: LocationKind::District,
                parent: Some(region.id),
            };
            bulk.put_location(&district)?;
            for w in 0..2 {
                let ward = Location {
                    id: self.id()?,
                    uuid: self.uuid(),
                    code: format!("W0{}{}", d + 1, w + 1),
                    name: format!("{district_name} Kata {}", w + 1),
                    kind: LocationKind::Ward,
                    parent: Some(district.id),
                };
                bulk.put_location(&ward)?;
                for v in 0..3 {
                    let village = Location {
                        id: self.id()?,
                        uuid: self.uuid(),
                        code: format!("V0{}{}{}", d + 1, w + 1, v + 1),
                        name: format!("{district_name} Kijiji {}", w * 3 + v + 1),
                        kind: LocationKind::Village,
                        parent: Some(ward.id),
                    };
                    bulk.put_location(&village)?;
                    self.villages.push(village.id);
                }
            }
        }
        Ok(())
    }

    fn products(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let date = |y, m, d| {
            NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| DemoError::Rule("bad date".into()))
        };
        let chf01 = Product {
            id: self.id()?,
            uuid: self.uuid(),
            code: "CHF01".into(),
            name: "CHF Iliyoboreshwa".into(),
            location: None,
            sale_from: date(2019, 1, 1)?,
            sale_to: date(2035, 12, 31)?,
            conversion: None,
            insurance_period_months: 12,
            administration_period_months: 0,
            cycles: Vec::new(),
            grace_period_enrolment_months: 0,
            grace_period_renewal_months: 0,
            grace_period_payment_months: 3,
            lump_sum: Money::tzs(30_000),
            member_count: 10,
            threshold: 6,
            premium_adult: Money::tzs(5_000),
            premium_child: Money::tzs(5_000),
            registration_lump_sum: Money::ZERO,
            registration_fee: Money::ZERO,
            assembly_lump_sum: Money::ZERO,
            assembly_fee: Money::ZERO,
            enrolment_discount: Discount::default(),
            renewal_discount: Discount::default(),
            max_installments: 3,
            sp_code: Some("SP111".into()),
        };
        let cycle = Product {
            id: self.id()?,
            uuid: self.uuid(),
            code: "CHFC1".into(),
            name: "CHF Mzunguko".into(),
            cycles: vec![
                CycleStart { day: 1, month: 1 },
                CycleStart { day: 1, month: 7 },
            ],
            grace_period_enrolment_months: 1,
            grace_period_renewal_months: 1,
            lump_sum: Money::tzs(20_000),
            registration_lump_sum: Money::tzs(2_000),
            enrolment_discount: Discount {
                perc: 10,
                period_months: 1,
            },
            sp_code: Some("SP112".into()),
            ..chf01.clone()
        };
        let legacy = Product {
            id: self.id()?,
            uuid: self.uuid(),
            code: "CHF00".into(),
            name: "CHF (zamani)".into(),
            sale_from: date(2015, 1, 1)?,
            sale_to: date(2022, 12, 31)?,
            conversion: Some(chf01.id),
            lump_sum: Money::tzs(10_000),
            sp_code: None,
            ..chf01.clone()
        };
        for p in [&chf01, &cycle, &legacy] {
            bulk.put_product(p)?;
        }
        self.chf01 = Some(chf01);
        Ok(())
    }

    fn officers(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let salt: [u8; 16] = self.rng.gen();
        // One hash for every demo officer: Argon2 is slow on purpose, and they share the PIN.
        let pin_hash =
            pin::hash(DEMO_OFFICER_PIN, salt).map_err(|e| DemoError::Rule(e.to_string()))?;
        let (kongwa, mpwapwa) = self.villages.split_at(self.villages.len() / 2);
        let (kongwa, mpwapwa) = (kongwa.to_vec(), mpwapwa.to_vec());
        let first = self.id()?;
        let specs: [OfficerSpec; 3] = [
            (
                DEMO_OFFICER_CODE,
                "Mwakyusa",
                "Amina",
                DEMO_OFFICER_PHONE,
                kongwa,
                None,
                None,
            ),
            (
                "EO0002",
                "Lyimo",
                "Petro",
                "255754000002",
                mpwapwa.clone(),
                None,
                None,
            ),
            // Left the scheme last month: its families fall to EO0001 as substitute.
            (
                "EO0003",
                "Swai",
                "Zawadi",
                "255754000003",
                mpwapwa,
                Some(self.options.today - Duration::days(30)),
                Some(first),
            ),
        ];
        for (i, (code, last, other, phone, villages, works_to, substitute)) in
            specs.into_iter().enumerate()
        {
            let id = if i == 0 { first } else { self.id()? };
            let officer = Officer {
                id,
                uuid: self.uuid(),
                code: code.into(),
                last_name: last.into(),
                other_names: other.into(),
                phone: Some(Msisdn::parse(phone).map_err(|e| DemoError::Rule(e.to_string()))?),
                district: None,
                villages,
                substitute,
                works_to,
                phone_communication: true,
                language: Language::Sw,
                pin_hash: Some(pin_hash.clone()),
            };
            bulk.put_officer(&officer)?;
            self.officers.push(officer.id);
        }
        Ok(())
    }

    fn chf01(&self) -> Result<Product, DemoError> {
        self.chf01
            .clone()
            .ok_or_else(|| DemoError::Rule("CHF01 not written yet".into()))
    }

    fn named_families(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let today = self.options.today;
        let product = self.chf01()?;
        let chfid = |s: &str| Chfid::parse(s).map_err(|e| DemoError::Rule(e.to_string()));

        // Active, about eight months left.
        let head = self.member(
            chfid(ACTIVE_CHFID)?,
            "Hamisi",
            "Juma",
            Gender::Male,
            None,
            Some("255754100001"),
        )?;
        let mut members = vec![head];
        members.extend(self.dependants(3, "Hamisi")?);
        let family = self.family(bulk, members, Language::Sw, true)?;
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(120),
            PolicyStage::New,
            Paid::Full,
        )?;

        // Expired about a month ago, never renewed.
        let head = self.member(
            chfid(EXPIRED_CHFID)?,
            "Mushi",
            "Neema",
            Gender::Female,
            None,
            Some("255754100002"),
        )?;
        let mut members = vec![head];
        members.extend(self.dependants(2, "Mushi")?);
        let family = self.family(bulk, members, Language::En, true)?;
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(400),
            PolicyStage::New,
            Paid::Full,
        )?;

        // Expired two weeks ago; renewed two days ago but not yet paid.
        let head = self.member(
            chfid(IDLE_RENEWAL_CHFID)?,
            "Kimaro",
            "Baraka",
            Gender::Male,
            None,
            Some("255754100003"),
        )?;
        let mut members = vec![head];
        members.extend(self.dependants(4, "Kimaro")?);
        let family = self.family(bulk, members, Language::Sw, true)?;
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(380),
            PolicyStage::New,
            Paid::Full,
        )?;
        let renewal = self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(2),
            PolicyStage::Renewal,
            Paid::Nothing,
        )?;
        self.payment_intent(
            bulk,
            &family,
            &product,
            &renewal,
            IDLE_RENEWAL_CONTROL_NUMBER,
        )?;
        Ok(())
    }

    fn generated_family(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let today = self.options.today;
        let product = self.chf01()?;
        let last = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&"Mwakyusa");
        let gender = if self.rng.gen_bool(0.5) {
            Gender::Male
        } else {
            Gender::Female
        };
        let first = self.first_name(gender);
        let chfid = self.next_chfid()?;
        let phone = format!("2557{:08}", self.rng.gen_range(10_000_000..99_999_999u32));
        let head = self.member(chfid, last, first, gender, None, Some(&phone))?;
        let dependants = self.rng.gen_range(0..=6);
        let mut members = vec![head];
        members.extend(self.dependants(dependants, last)?);
        let language = if self.rng.gen_bool(0.8) {
            Language::Sw
        } else {
            Language::En
        };
        let approved = self.rng.gen_bool(0.85);
        let family = self.family(bulk, members, language, approved)?;
        // A mix that exercises every journey: mostly active, some lapsed, some unpaid, and a
        // share expiring within the renewal-prompt window.
        let roll: f64 = self.rng.gen();
        let (days_ago, paid) = if roll < 0.55 {
            (self.rng.gen_range(14..330), Paid::Full)
        } else if roll < 0.70 {
            (self.rng.gen_range(352..365), Paid::Full)
        } else if roll < 0.85 {
            (self.rng.gen_range(366..700), Paid::Full)
        } else if roll < 0.95 {
            (self.rng.gen_range(0..60), Paid::Nothing)
        } else {
            (self.rng.gen_range(14..200), Paid::Part)
        };
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(days_ago),
            PolicyStage::New,
            paid,
        )?;
        Ok(())
    }

    fn first_name(&mut self, gender: Gender) -> &'static str {
        let names = if gender == Gender::Female {
            FEMALE_NAMES
        } else {
            MALE_NAMES
        };
        names.choose(&mut self.rng).copied().unwrap_or("Juma")
    }

    fn next_chfid(&mut self) -> Result<Chfid, DemoError> {
        let c = Chfid::from_base(self.next_generated)
            .ok_or_else(|| DemoError::Rule("generated CHFIDs exhausted".into()))?;
        self.next_generated += 1;
        Ok(c)
    }

    fn member(
        &mut self,
        chfid: Chfid,
        last: &str,
        other: &str,
        gender: Gender,
        relationship: Option<Relationship>,
        phone: Option<&str>,
    ) -> Result<NewMember, DemoError> {
        let adult = relationship.is_none() || relationship == Some(Relationship::Spouse);
        let age_days = if adult {
            self.rng.gen_range(20 * 365..70 * 365)
        } else {
            self.rng.gen_range(30..17 * 365)
        };
        let phone = match phone {
            Some(p) => Some(Msisdn::parse(p).map_err(|e| DemoError::Rule(e.to_string()))?),
            None => None,
        };
        Ok(NewMember {
            chfid,
            last_name: last.into(),
            other_names: other.into(),
            dob: self.options.today - Duration::days(age_days),
            gender,
            relationship,
            phone,
        })
    }

    fn dependants(&mut self, n: usize, last: &str) -> Result<Vec<NewMember>, DemoError> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let gender = if self.rng.gen_bool(0.5) {
                Gender::Male
            } else {
                Gender::Female
            };
            let relationship = if i == 0 {
                Relationship::Spouse
            } else {
                Relationship::Child
            };
            let first = self.first_name(gender);
            let chfid = self.next_chfid()?;
            out.push(self.member(chfid, last, first, gender, Some(relationship), None)?);
        }
        Ok(out)
    }

    /// Writes the family and its members (the first is the head).
    fn family(
        &mut self,
        bulk: &mut BulkWriter,
        members: Vec<NewMember>,
        language: Language,
        approved: bool,
    ) -> Result<FamilyRecord, DemoError> {
        let family_id = self.id()?;
        let village = *self
            .villages
            .choose(&mut self.rng)
            .ok_or_else(|| DemoError::Rule("no villages".into()))?;
        let mut insurees = Vec::with_capacity(members.len());
        for (i, m) in members.into_iter().enumerate() {
            let insuree = Insuree {
                id: self.id()?,
                uuid: self.uuid(),
                chfid: m.chfid,
                family: family_id,
                is_head: i == 0,
                last_name: m.last_name,
                other_names: m.other_names,
                dob: m.dob,
                gender: m.gender,
                relationship: m.relationship,
                phone: m.phone,
                card_issued: true,
            };
            bulk.put_insuree(&insuree)?;
            insurees.push(insuree);
        }
        let head = insurees
            .first()
            .map(|h| h.id)
            .ok_or_else(|| DemoError::Rule("family without a head".into()))?;
        let family = Family {
            id: family_id,
            uuid: self.uuid(),
            head,
            village,
            poverty: self.rng.gen_bool(0.1),
            sms: SmsPreference { approved, language },
        };
        bulk.put_family(&family)?;
        self.summary.families += 1;
        self.summary.insurees += insurees.len() as u64;
        Ok(FamilyRecord { family, insurees })
    }

    fn policy(
        &mut self,
        bulk: &mut BulkWriter,
        family: &FamilyRecord,
        product: &Product,
        enroll: NaiveDate,
        stage: PolicyStage,
        paid: Paid,
    ) -> Result<Policy, DemoError> {
        let today = self.options.today;
        let period =
            policy_period(product, enroll, stage).map_err(|e| DemoError::Rule(e.to_string()))?;
        let members: Vec<MemberForValue> = family
            .insurees
            .iter()
            .map(|i| MemberForValue {
                dob: i.dob,
                relationship: i.relationship,
            })
            .collect();
        let value = policy_value(product, &members, stage, enroll, period.start, None);
        let pay_date = enroll + Duration::days(self.rng.gen_range(0..10));
        let effective = match paid {
            Paid::Full => Some(period.start.max(pay_date)),
            Paid::Part | Paid::Nothing => None,
        };
        let status = match (effective, period.expiry < today) {
            (Some(_), true) => PolicyStatus::Expired,
            (Some(_), false) => PolicyStatus::Active,
            (None, _) => PolicyStatus::Idle,
        };
        let officer = self.officers.first().copied();
        let policy = Policy {
            id: self.id()?,
            uuid: self.uuid(),
            family: family.family.id,
            product: product.id,
            officer,
            stage,
            status,
            value,
            enroll_date: enroll,
            start_date: period.start,
            effective_date: effective,
            expiry_date: period.expiry,
            self_renewed: false,
        };
        bulk.put_policy(&policy)?;
        for insuree in &family.insurees {
            let ip = InsureePolicy {
                id: self.id()?,
                insuree: insuree.id,
                policy: policy.id,
                enrollment_date: enroll,
                start_date: period.start,
                effective_date: effective,
                expiry_date: period.expiry,
            };
            bulk.put_insuree_policy(&ip)?;
        }
        let amount = match paid {
            Paid::Full => Some(value),
            Paid::Part => Some(Money(value.cents() / 2)),
            Paid::Nothing => None,
        };
        if let Some(amount) = amount {
            let premium = Premium {
                id: self.id()?,
                uuid: self.uuid(),
                policy: policy.id,
                amount,
                receipt: format!(
                    "RE-{}-{}-{:05}",
                    product.code,
                    enroll.format("%Y%m%d"),
                    policy.id % 100_000
                ),
                pay_date,
                pay_type: PayType::Mobile,
                is_photo_fee: false,
            };
            bulk.put_premium(&premium)?;
            self.summary.premiums += 1;
        }
        self.summary.policies += 1;
        Ok(policy)
    }

    fn payment_intent(
        &mut self,
        bulk: &mut BulkWriter,
        family: &FamilyRecord,
        product: &Product,
        policy: &Policy,
        control_number: &str,
    ) -> Result<(), DemoError> {
        let head = family
            .insurees
            .first()
            .ok_or_else(|| DemoError::Rule("family without a head".into()))?;
        let requested = self
            .options
            .today
            .and_hms_opt(9, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| DemoError::Rule("bad time".into()))?;
        let (id, uuid) = (self.id()?, self.uuid());
        let line = PaymentDetail {
            product_code: product.code.clone(),
            chfid: head.chfid,
            stage: PolicyStage::Renewal,
            policy: Some(policy.id),
            expected_amount: policy.value,
            amount: None,
            premium: None,
        };
        let mut payment = Payment::intent(
            id,
            uuid,
            line,
            head.phone.clone(),
            family.family.sms.language,
            requested,
        );
        payment.status = PaymentStatus::Assigned;
        payment.control_number = Some(control_number.into());
        bulk.put_payment(&payment)?;
        let cn = ControlNumber {
            id: self.id()?,
            number: control_number.into(),
            status: ControlNumberStatus::Assigned,
            payment: Some(payment.id),
            product: Some(product.id),
            requested_date: requested,
            received_date: Some(requested),
        };
        bulk.put_control_number(&cn)?;
        Ok(())
    }
}

/// Code, last name, other names, phone, villages, works-to, substitute.
type OfficerSpec<'s> = (
    &'s str,
    &'s str,
    &'s str,
    &'s str,
    Vec<Id>,
    Option<NaiveDate>,
    Option<Id>,
);

struct FamilyRecord {
    family: Family,
    insurees: Vec<Insuree>,
}

#[derive(Clone, Copy)]
enum Paid {
    Full,
    Part,
    Nothing,
}
