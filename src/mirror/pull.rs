//! Central → local: the one-off import into an empty store and the incremental pull.
//!
//! Owns: mapping current openIMIS rows (`ValidityTo IS NULL`) to our records, the
//! central → local id allocation (through [`super::idmap`]) and the per-table pull
//! watermarks (aux `mirror.pull`: table → last `ValidityFrom` seen, in µs).
//! Must never: write through a mirroring transaction (pulled rows use
//! [`Store::write_from_central`] or a bulk load, so they are not echoed back), or overwrite
//! an entity that has an unmirrored local write (the conflict rule in [`super`]).
//!
//! The pull re-reads a small overlap before its watermark, because `ValidityFrom` is the
//! writing transaction's start time and a long transaction may commit after a later one;
//! rows that did not change are recognised and skipped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::{Client, Row as PgRow};
use uuid::Uuid;

use super::{idmap, MirrorError};
use crate::domain::{
    Chfid, CycleStart, Discount, Family, Gender, Id, Insuree, InsureePolicy, Language, Location,
    LocationKind, Money, Msisdn, Officer, PayType, Payment, PaymentDetail, PaymentStatus, Policy,
    PolicyStage, PolicyStatus, Premium, Product, Relationship, SmsPreference,
};
use crate::shutdown::Signal;
use crate::store::{mirror_entity_key, Store, TxResult, MIRROR_PENDING_NS};

const NS_WATERMARK: &str = "mirror.pull";
/// How far before the watermark each pull looks again (see the module doc).
const OVERLAP: Duration = Duration::from_secs(60);

/// Entries kept in [`LocalIds`]' cache.
const CACHE_CAP: usize = 1_000_000;

/// Allocates local ids for central rows, remembering them in the id map.
struct LocalIds<'a> {
    store: &'a Store,
    cache: HashMap<(&'static str, i64), Id>,
}

impl LocalIds<'_> {
    fn get(&mut self, kind: &'static str, central: i64) -> Result<Id, MirrorError> {
        if let Some(id) = self.cache.get(&(kind, central)) {
            return Ok(*id);
        }
        // Bounded: a million-family import maps ~10 million ids; past the cap the id map in
        // the store answers (a point read) until the cache warms up again.
        if self.cache.len() >= CACHE_CAP {
            self.cache.clear();
        }
        let id = match idmap::local(self.store, kind, central)? {
            Some(id) => id,
            None => {
                let id = self.store.next_id()?;
                idmap::put(self.store, kind, id, central)?;
                id
            }
        };
        self.cache.insert((kind, central), id);
        Ok(id)
    }

    fn opt(&mut self, kind: &'static str, central: Option<i64>) -> Result<Option<Id>, MirrorError> {
        central.map(|c| self.get(kind, c)).transpose()
    }
}

fn bad(table: &'static str, id: i64, reason: impl Into<String>) -> MirrorError {
    MirrorError::BadCentralRow {
        table,
        id,
        reason: reason.into(),
    }
}

fn uuid_of(table: &'static str, id: i64, s: &str) -> Result<Uuid, MirrorError> {
    Uuid::parse_str(s.trim()).map_err(|e| bad(table, id, format!("UUID {s:?}: {e}")))
}

fn money(cents: Option<i64>) -> Money {
    Money(cents.unwrap_or(0))
}

fn u32of(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn phone(s: Option<String>) -> Option<Msisdn> {
    s.and_then(|p| Msisdn::parse(&p).ok())
}

/// The SELECT of one table: `{cols}` are the mapped columns with casts; only current rows.
struct Query {
    table: &'static str,
    kind: &'static str,
    sql: &'static str,
}

const Q_LOCATIONS: Query = Query {
    table: "tblLocations",
    kind: "location",
    sql: r#"SELECT "LocationId"::int8, "LocationUUID"::text, "LocationCode", "LocationName",
        "LocationType", "ParentLocationId"::int8, "ValidityFrom" FROM "tblLocations""#,
};
const Q_PRODUCTS: Query = Query {
    table: "tblProduct",
    kind: "product",
    sql: r#"SELECT "ProdID"::int8, "ProdUUID"::text, "ProductCode", "ProductName",
        "LocationId"::int8, "DateFrom", "DateTo", "ConversionProdID"::int8,
        "InsurancePeriod"::int4, "AdministrationPeriod", ("LumpSum"*100)::int8,
        "MemberCount"::int4, "Threshold", ("PremiumAdult"*100)::int8,
        ("PremiumChild"*100)::int8, ("RegistrationLumpSum"*100)::int8,
        ("RegistrationFee"*100)::int8, ("GeneralAssemblyLumpSum"*100)::int8,
        ("GeneralAssemblyFee"*100)::int8, "StartCycle1", "StartCycle2", "StartCycle3",
        "StartCycle4", "GracePeriod", "GracePeriodRenewal", "WaitingPeriod",
        "MaxInstallments", "EnrolmentDiscountPerc", "EnrolmentDiscountPeriod",
        "RenewalDiscountPerc", "RenewalDiscountPeriod", "AccCodePremiums", "ValidityFrom"
        FROM "tblProduct""#,
};
const Q_OFFICERS: Query = Query {
    table: "tblOfficer",
    kind: "officer",
    sql: r#"SELECT "OfficerID"::int8, "OfficerUUID"::text, "Code", "LastName", "OtherNames",
        "Phone", "LocationId"::int8, "OfficerIDSubst"::int8, "WorksTo", "PhoneCommunication",
        ARRAY(SELECT v."LocationId"::int8 FROM "tblOfficerVillages" v
              WHERE v."OfficerId" = o."OfficerID" AND v."ValidityTo" IS NULL
              AND v."LocationId" IS NOT NULL ORDER BY 1), "ValidityFrom"
        FROM "tblOfficer" o"#,
};
const Q_FAMILIES: Query = Query {
    table: "tblFamilies",
    kind: "family",
    sql: r#"SELECT "FamilyID"::int8, "FamilyUUID"::text, "InsureeID"::int8, "LocationId"::int8,
        "Poverty",
        (SELECT s."ApprovalOfSMS" FROM "tblFamilySMS" s
         WHERE s."FamilyID" = f."FamilyID" AND s."ValidityTo" IS NULL),
        (SELECT s."LanguageOfSMS" FROM "tblFamilySMS" s
         WHERE s."FamilyID" = f."FamilyID" AND s."ValidityTo" IS NULL),
        "ValidityFrom" FROM "tblFamilies" f"#,
};
const Q_INSUREES: Query = Query {
    table: "tblInsuree",
    kind: "insuree",
    sql: r#"SELECT "InsureeID"::int8, "InsureeUUID"::text, "FamilyID"::int8, "CHFID",
        "LastName", "OtherNames", "DOB", "Gender", "IsHead", "Phone", "CardIssued",
        "Relationship"::int4, "ValidityFrom" FROM "tblInsuree""#,
};
const Q_POLICIES: Query = Query {
    table: "tblPolicy",
    kind: "policy",
    sql: r#"SELECT "PolicyID"::int8, "PolicyUUID"::text, "FamilyID"::int8, "ProdID"::int8,
        "OfficerID"::int8, "PolicyStage", "PolicyStatus"::int4, ("PolicyValue"*100)::int8,
        "EnrollDate", "StartDate", "EffectiveDate", "ExpiryDate", "ValidityFrom"
        FROM "tblPolicy""#,
};
const Q_INSUREE_POLICIES: Query = Query {
    table: "tblInsureePolicy",
    kind: "insuree_policy",
    sql: r#"SELECT "InsureePolicyID"::int8, NULL::text, "InsureeID"::int8, "PolicyId"::int8,
        "EnrollmentDate", "StartDate", "EffectiveDate", "ExpiryDate", "ValidityFrom"
        FROM "tblInsureePolicy""#,
};
const Q_PREMIUMS: Query = Query {
    table: "tblPremium",
    kind: "premium",
    sql: r#"SELECT "PremiumId"::int8, "PremiumUUID"::text, "PolicyID"::int8,
        ("Amount"*100)::int8, "Receipt", "PayDate", "PayType", "isPhotoFee", "ValidityFrom"
        FROM "tblPremium""#,
};
/// Open payments only (not matched, not rejected), with their detail lines.
const Q_PAYMENTS: Query = Query {
    table: "tblPayment",
    kind: "payment",
    sql: r#"SELECT "PaymentID"::int8, "PaymentUUID"::text, "PaymentStatus",
        ("ExpectedAmount"*100)::int8, ("ReceivedAmount"*100)::int8, "OfficerCode",
        "PhoneNumber", "LanguageName", "RequestDate", "ReceivedDate", "PaymentDate",
        "MatchedDate", "TransactionNo", "ReceiptNo", "PaymentOrigin", "RejectedReason",
        (SELECT c."ControlNumber" FROM "tblControlNumber" c
         WHERE c."PaymentID" = p."PaymentID" AND c."ValidityTo" IS NULL
         ORDER BY c."ControlNumberID" DESC LIMIT 1),
        ARRAY(SELECT d."ProductCode" || '|' || d."InsuranceNumber" || '|' ||
                     coalesce(d."PolicyStage", 'N') || '|' ||
                     coalesce((d."ExpectedAmount"*100)::int8, 0)::text
              FROM "tblPaymentDetails" d
              WHERE d."PaymentID" = p."PaymentID" AND d."ValidityTo" IS NULL
              ORDER BY d."PaymentDetailsID"),
        "ValidityFrom" FROM "tblPayment" p WHERE "PaymentStatus" BETWEEN 0 AND 4"#,
};

/// Tables in dependency order (a referenced entity's id is allocated on first sight, so the
/// order only matters for readable progress).
const ALL: [&Query; 9] = [
    &Q_LOCATIONS,
    &Q_PRODUCTS,
    &Q_OFFICERS,
    &Q_FAMILIES,
    &Q_INSUREES,
    &Q_POLICIES,
    &Q_INSUREE_POLICIES,
    &Q_PREMIUMS,
    &Q_PAYMENTS,
];

/// A record decoded from a central row.
enum Pulled {
    Location(Location),
    Product(Product),
    Officer(Officer),
    Family(Family),
    Insuree(Insuree),
    Policy(Policy),
    InsureePolicy(InsureePolicy),
    Premium(Premium),
    Payment(Payment),
}

impl Pulled {
    fn id(&self) -> Id {
        match self {
            Pulled::Location(r) => r.id,
            Pulled::Product(r) => r.id,
            Pulled::Officer(r) => r.id,
            Pulled::Family(r) => r.id,
            Pulled::Insuree(r) => r.id,
            Pulled::Policy(r) => r.id,
            Pulled::InsureePolicy(r) => r.id,
            Pulled::Premium(r) => r.id,
            Pulled::Payment(r) => r.id,
        }
    }
}

fn date_of(ts: Option<DateTime<Utc>>) -> Option<NaiveDate> {
    ts.map(|t| t.date_naive())
}

fn cycle(s: Option<String>) -> Option<CycleStart> {
    let s = s?;
    let (d, m) = s.trim().split_once('-')?;
    Some(CycleStart {
        day: d.parse().ok()?,
        month: m.parse().ok()?,
    })
}

fn decode(q: &Query, r: &PgRow, ids: &mut LocalIds<'_>) -> Result<Pulled, MirrorError> {
    let cid: i64 = r.try_get(0)?;
    let t = q.table;
    let id = ids.get(q.kind, cid)?;
    let uuid = |i: usize| -> Result<Uuid, MirrorError> {
        let s: Option<String> = r.try_get(i)?;
        uuid_of(t, cid, s.as_deref().unwrap_or(""))
    };
    Ok(match q.kind {
        "location" => {
            let lt: String = r.try_get(4)?;
            let kind = match lt.as_str() {
                "R" => LocationKind::Region,
                "D" => LocationKind::District,
                "W" => LocationKind::Ward,
                "V" => LocationKind::Village,
                other => return Err(bad(t, cid, format!("LocationType {other:?}"))),
            };
            Pulled::Location(Location {
                id,
                uuid: uuid(1)?,
                code: r.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
                name: r.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
                kind,
                parent: ids.opt("location", r.try_get(5)?)?,
            })
        }
        "product" => {
            let from: DateTime<Utc> = r.try_get(5)?;
            let to: DateTime<Utc> = r.try_get(6)?;
            let cycles = (19..23)
                .map(|i| r.try_get::<_, Option<String>>(i).map(cycle))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            let disc = |p: usize| -> Result<Discount, MirrorError> {
                let perc: Option<i32> = r.try_get(p)?;
                Ok(Discount {
                    perc: u8::try_from(u32of(perc)).unwrap_or(0),
                    period_months: u32of(r.try_get(p + 1)?),
                })
            };
            Pulled::Product(Product {
                id,
                uuid: uuid(1)?,
                code: r.try_get(2)?,
                name: r.try_get(3)?,
                location: ids.opt("location", r.try_get(4)?)?,
                sale_from: from.date_naive(),
                sale_to: to.date_naive(),
                conversion: ids.opt("product", r.try_get(7)?)?,
                insurance_period_months: u32of(r.try_get(8)?),
                administration_period_months: u32of(r.try_get(9)?),
                lump_sum: money(r.try_get(10)?),
                member_count: u32of(r.try_get(11)?),
                threshold: u32of(r.try_get(12)?),
                premium_adult: money(r.try_get(13)?),
                premium_child: money(r.try_get(14)?),
                registration_lump_sum: money(r.try_get(15)?),
                registration_fee: money(r.try_get(16)?),
                assembly_lump_sum: money(r.try_get(17)?),
                assembly_fee: money(r.try_get(18)?),
                cycles,
                grace_period_enrolment_months: u32of(r.try_get(23)?),
                grace_period_renewal_months: u32of(r.try_get(24)?),
                grace_period_payment_months: u32of(r.try_get(25)?),
                max_installments: u32of(r.try_get(26)?),
                enrolment_discount: disc(27)?,
                renewal_discount: disc(29)?,
                sp_code: r.try_get(31)?,
            })
        }
        "officer" => {
            let villages: Vec<i64> = r.try_get(10)?;
            let villages = villages
                .into_iter()
                .map(|v| ids.get("location", v))
                .collect::<Result<Vec<_>, _>>()?;
            Pulled::Officer(Officer {
                id,
                uuid: uuid(1)?,
                code: r.try_get(2)?,
                last_name: r.try_get(3)?,
                other_names: r.try_get(4)?,
                phone: phone(r.try_get(5)?),
                district: ids.opt("location", r.try_get(6)?)?,
                villages,
                substitute: ids.opt("officer", r.try_get(7)?)?,
                works_to: date_of(r.try_get(8)?),
                phone_communication: r.try_get::<_, Option<bool>>(9)?.unwrap_or(false),
                language: Language::Sw,
                pin_hash: None,
            })
        }
        "family" => {
            let lang: Option<String> = r.try_get(6)?;
            Pulled::Family(Family {
                id,
                uuid: uuid(1)?,
                head: ids.get("insuree", r.try_get(2)?)?,
                village: ids
                    .opt("location", r.try_get(3)?)?
                    .ok_or_else(|| bad(t, cid, "no LocationId"))?,
                poverty: r.try_get::<_, Option<bool>>(4)?.unwrap_or(false),
                sms: SmsPreference {
                    approved: r.try_get::<_, Option<bool>>(5)?.unwrap_or(false),
                    language: lang
                        .as_deref()
                        .and_then(Language::parse)
                        .unwrap_or_default(),
                },
            })
        }
        "insuree" => {
            let chfid: Option<String> = r.try_get(3)?;
            let chfid = Chfid::parse(chfid.as_deref().unwrap_or(""))
                .map_err(|e| bad(t, cid, format!("CHFID: {e}")))?;
            let gender: Option<String> = r.try_get(7)?;
            let rel: Option<i32> = r.try_get(11)?;
            Pulled::Insuree(Insuree {
                id,
                uuid: uuid(1)?,
                chfid,
                family: ids.get("family", r.try_get(2)?)?,
                last_name: r.try_get(4)?,
                other_names: r.try_get(5)?,
                dob: r.try_get(6)?,
                gender: gender
                    .and_then(|g| g.chars().next())
                    .and_then(Gender::from_code)
                    .unwrap_or(Gender::Other),
                is_head: r.try_get(8)?,
                phone: phone(r.try_get(9)?),
                card_issued: r.try_get(10)?,
                relationship: rel
                    .and_then(|x| u8::try_from(x).ok())
                    .and_then(Relationship::from_id),
            })
        }
        "policy" => {
            let stage: Option<String> = r.try_get(5)?;
            let status: Option<i32> = r.try_get(6)?;
            let status = status
                .and_then(|s| i16::try_from(s).ok())
                .and_then(PolicyStatus::from_code)
                .ok_or_else(|| bad(t, cid, format!("PolicyStatus {status:?}")))?;
            let start: NaiveDate = r.try_get(9)?;
            Pulled::Policy(Policy {
                id,
                uuid: uuid(1)?,
                family: ids.get("family", r.try_get(2)?)?,
                product: ids.get("product", r.try_get(3)?)?,
                officer: ids.opt("officer", r.try_get(4)?)?,
                stage: if stage.as_deref() == Some("R") {
                    PolicyStage::Renewal
                } else {
                    PolicyStage::New
                },
                status,
                value: money(r.try_get(7)?),
                enroll_date: r.try_get(8)?,
                start_date: start,
                effective_date: r.try_get(10)?,
                expiry_date: r.try_get::<_, Option<NaiveDate>>(11)?.unwrap_or(start),
                self_renewed: false,
            })
        }
        "insuree_policy" => {
            let start: Option<NaiveDate> = r.try_get(5)?;
            let start = start.ok_or_else(|| bad(t, cid, "no StartDate"))?;
            Pulled::InsureePolicy(InsureePolicy {
                id,
                insuree: ids.get("insuree", r.try_get(2)?)?,
                policy: ids.get("policy", r.try_get(3)?)?,
                enrollment_date: r.try_get::<_, Option<NaiveDate>>(4)?.unwrap_or(start),
                start_date: start,
                effective_date: r.try_get(6)?,
                expiry_date: r.try_get::<_, Option<NaiveDate>>(7)?.unwrap_or(start),
            })
        }
        "premium" => {
            let pt: String = r.try_get(6)?;
            let pay_type = match pt.as_str() {
                "B" => PayType::Bank,
                "C" => PayType::Cash,
                "M" => PayType::Mobile,
                "F" => PayType::Funding,
                other => return Err(bad(t, cid, format!("PayType {other:?}"))),
            };
            Pulled::Premium(Premium {
                id,
                uuid: uuid(1)?,
                policy: ids.get("policy", r.try_get(2)?)?,
                amount: money(r.try_get(3)?),
                receipt: r.try_get(4)?,
                pay_date: r.try_get(5)?,
                pay_type,
                is_photo_fee: r.try_get::<_, Option<bool>>(7)?.unwrap_or(false),
            })
        }
        _ => {
            let status: Option<i32> = r.try_get(2)?;
            let status = status
                .and_then(PaymentStatus::from_code)
                .ok_or_else(|| bad(t, cid, format!("PaymentStatus {status:?}")))?;
            let lang: Option<String> = r.try_get(7)?;
            let lines: Vec<String> = r.try_get(17)?;
            let mut details = Vec::new();
            for l in lines {
                let parts: Vec<&str> = l.split('|').collect();
                let [code, chfid, stage, cents] = parts[..] else {
                    return Err(bad(t, cid, format!("detail {l:?}")));
                };
                details.push(PaymentDetail {
                    product_code: code.to_string(),
                    chfid: Chfid::parse(chfid).map_err(|e| bad(t, cid, format!("CHFID: {e}")))?,
                    stage: if stage == "R" {
                        PolicyStage::Renewal
                    } else {
                        PolicyStage::New
                    },
                    policy: None,
                    expected_amount: Money(cents.parse().unwrap_or(0)),
                    amount: None,
                    premium: None,
                });
            }
            Pulled::Payment(Payment {
                id,
                uuid: uuid(1)?,
                status,
                expected_amount: money(r.try_get(3)?),
                received_amount: r.try_get::<_, Option<i64>>(4)?.map(Money),
                officer_code: r.try_get(5)?,
                phone: phone(r.try_get(6)?),
                language: lang
                    .as_deref()
                    .and_then(Language::parse)
                    .unwrap_or_default(),
                request_date: r
                    .try_get::<_, Option<DateTime<Utc>>>(8)?
                    .unwrap_or_else(Utc::now),
                received_date: r.try_get(9)?,
                payment_date: r.try_get(10)?,
                matched_date: r.try_get(11)?,
                transaction_no: r.try_get(12)?,
                receipt_no: r.try_get(13)?,
                payment_origin: r.try_get(14)?,
                rejected_reason: r.try_get(15)?,
                control_number: r.try_get(16)?,
                details,
            })
        }
    })
}

fn put_bulk(
    b: &mut crate::store::BulkWriter<'_>,
    p: &Pulled,
) -> Result<(), crate::store::StoreError> {
    match p {
        Pulled::Location(r) => b.put_location(r),
        Pulled::Product(r) => b.put_product(r),
        Pulled::Officer(r) => b.put_officer(r),
        Pulled::Family(r) => b.put_family(r),
        Pulled::Insuree(r) => b.put_insuree(r),
        Pulled::Policy(r) => b.put_policy(r),
        Pulled::InsureePolicy(r) => b.put_insuree_policy(r),
        Pulled::Premium(r) => b.put_premium(r),
        Pulled::Payment(r) => b.put_payment(r),
    }
}

fn watermark_set(store: &Store, table: &str, t: DateTime<Utc>) -> Result<(), MirrorError> {
    store.aux_put(
        NS_WATERMARK,
        table.as_bytes(),
        &t.timestamp_micros().to_be_bytes(),
    )?;
    Ok(())
}

fn watermark(store: &Store, table: &str) -> Result<Option<DateTime<Utc>>, MirrorError> {
    Ok(store
        .aux_get(NS_WATERMARK, table.as_bytes())?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .and_then(|b| DateTime::<Utc>::from_timestamp_micros(i64::from_be_bytes(b))))
}

/// What an import loaded, per table.
pub type ImportCounts = Vec<(&'static str, u64)>;

/// Loads the current central rows into an empty store, streaming in chunks. `progress` is
/// called every chunk with (table, rows so far).
pub async fn import(
    client: &Client,
    store: &Store,
    mut progress: impl FnMut(&str, u64),
) -> Result<ImportCounts, MirrorError> {
    let c = store.counts()?;
    if c.families + c.insurees + c.policies + c.products + c.locations + c.officers > 0 {
        return Err(MirrorError::NotEmpty);
    }
    let mut ids = LocalIds {
        store,
        cache: HashMap::new(),
    };
    let mut out = Vec::new();
    let started = client
        .query_one("SELECT now()", &[])
        .await?
        .get::<_, DateTime<Utc>>(0);
    for q in ALL {
        let sql = if q.kind == "payment" {
            format!("{} AND \"ValidityTo\" IS NULL", q.sql)
        } else {
            format!("{} WHERE \"ValidityTo\" IS NULL", q.sql)
        };
        let stream = client.query_raw(&sql, std::iter::empty::<i32>()).await?;
        stream_chunks(
            stream,
            |rows| -> Result<(), MirrorError> {
                let mut chunk = Vec::with_capacity(rows.len());
                for r in rows {
                    chunk.push(decode(q, r, &mut ids)?);
                }
                store.bulk(|b| chunk.iter().try_for_each(|p| put_bulk(b, p)))??;
                Ok(())
            },
            |n| progress(q.table, n),
        )
        .await
        .map(|n| out.push((q.table, n)))?;
        watermark_set(store, q.table, started)?;
    }
    store.flush()?;
    Ok(out)
}

/// Rows per import chunk: each chunk is one bulk load, which ends with a flush of the store,
/// so chunks are large (a few MB of records) to keep flushes rare.
const CHUNK: usize = 25_000;

/// Drives a row stream in chunks of [`CHUNK`] rows; returns the row count.
async fn stream_chunks(
    stream: tokio_postgres::RowStream,
    mut each: impl FnMut(&[PgRow]) -> Result<(), MirrorError>,
    mut progress: impl FnMut(u64),
) -> Result<u64, MirrorError> {
    use futures_util::TryStreamExt;
    let mut stream = std::pin::pin!(stream);
    let mut buf = Vec::with_capacity(CHUNK);
    let mut n = 0u64;
    while let Some(row) = stream.try_next().await? {
        buf.push(row);
        if buf.len() == CHUNK {
            each(&buf)?;
            n += buf.len() as u64;
            buf.clear();
            progress(n);
        }
    }
    if !buf.is_empty() {
        each(&buf)?;
        n += buf.len() as u64;
        progress(n);
    }
    Ok(n)
}

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    pub applied: usize,
    pub unchanged: usize,
    /// Skipped because the entity has an unmirrored local write (the local write wins).
    pub conflicts: usize,
}

/// Applies central rows changed since each table's watermark.
pub async fn pull_once(client: &Client, store: &Store) -> Result<PullReport, MirrorError> {
    let mut ids = LocalIds {
        store,
        cache: HashMap::new(),
    };
    let mut report = PullReport::default();
    for q in ALL {
        let since = watermark(store, q.table)?
            .map(|t| t - chrono::Duration::from_std(OVERLAP).unwrap_or_default())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let cond = if q.kind == "payment" {
            " AND "
        } else {
            " WHERE "
        };
        let sql = format!(
            "{}{cond}\"ValidityTo\" IS NULL AND \"ValidityFrom\" > $1 ORDER BY \"ValidityFrom\"",
            q.sql
        );
        let rows = client.query(&sql, &[&since]).await?;
        let mut newest = None;
        for r in &rows {
            let vf: DateTime<Utc> = r.try_get(r.len() - 1)?;
            newest = Some(newest.map_or(vf, |n: DateTime<Utc>| n.max(vf)));
            let p = decode(q, r, &mut ids)?;
            let key = mirror_entity_key(q.kind, p.id());
            if store.aux_get(MIRROR_PENDING_NS, &key)?.is_some() {
                tracing::warn!(
                    kind = q.kind,
                    id = p.id(),
                    "pull: central change skipped; a local write is not mirrored yet and wins"
                );
                report.conflicts += 1;
                continue;
            }
            if apply(store, &p)? {
                report.applied += 1;
            } else {
                report.unchanged += 1;
            }
        }
        if let Some(n) = newest {
            if watermark(store, q.table)?.is_none_or(|w| n > w) {
                watermark_set(store, q.table, n)?;
            }
        }
    }
    Ok(report)
}

/// Writes a pulled record unless the store already holds exactly it, keeping local-only
/// fields (an officer's PIN and language). Returns whether it wrote.
fn apply(store: &Store, p: &Pulled) -> Result<bool, MirrorError> {
    macro_rules! put_if_changed {
        ($get:ident, $put:ident, $r:expr) => {{
            if store.$get($r.id)?.as_ref() == Some($r) {
                return Ok(false);
            }
            let r = $r.clone();
            store
                .write_from_central(|tx| -> TxResult<(), Infallible> { Ok(tx.$put(&r)?) })
                .map_err(crate::store::StoreError::from)?;
        }};
    }
    match p {
        Pulled::Location(r) => put_if_changed!(location, put_location, r),
        Pulled::Product(r) => put_if_changed!(product, put_product, r),
        Pulled::Officer(r) => {
            let mut r = r.clone();
            if let Some(old) = store.officer(r.id)? {
                r.pin_hash = old.pin_hash;
                r.language = old.language;
            }
            put_if_changed!(officer, put_officer, &r)
        }
        Pulled::Family(r) => put_if_changed!(family, put_family, r),
        Pulled::Insuree(r) => put_if_changed!(insuree, put_insuree, r),
        Pulled::Policy(r) => {
            let mut r = r.clone();
            if let Some(old) = store.policy(r.id)? {
                r.self_renewed = old.self_renewed;
            }
            put_if_changed!(policy, put_policy, &r)
        }
        Pulled::InsureePolicy(r) => put_if_changed!(insuree_policy, put_insuree_policy, r),
        Pulled::Premium(r) => put_if_changed!(premium, put_premium, r),
        Pulled::Payment(r) => put_if_changed!(payment, put_payment, r),
    }
    Ok(true)
}

/// The pull task of `serve`: every `interval`, connect if needed and pull.
pub async fn run_puller(store: Store, dsn: String, interval: Duration, mut signal: Signal) {
    let mut client: Option<Client> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = signal.recv() => break,
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            match super::connect(&dsn).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "pull: central database unreachable");
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        match pull_once(c, &store).await {
            Ok(r) if r.applied + r.conflicts > 0 => {
                tracing::info!(
                    applied = r.applied,
                    conflicts = r.conflicts,
                    "pulled central changes"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pull failed; will retry next interval"),
        }
    }
}
