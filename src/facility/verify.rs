//! One verification: the patient's identity hints and cover on the visit date, and its
//! record with the facility's daily count.
//!
//! Owns: [`answer`] (the store read and the domain's eligibility rule per member), aux
//! namespaces [`NS_LOG`] (one record per verification) and [`NS_DAILY`] (per EAT day and
//! facility, a count, read by `GET /metrics`).
//! Must never: record a full phone number (the staff phone is masked), or count a
//! verification that was not recorded (both go in one transaction).
//!
//! openIMIS has no table for a bare verification (a claim's `tblClaim` is the only place a
//! facility's visit is written, and it needs a claim): records stay in this store.

use std::fmt::Write;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::eligibility::{eligibility, Eligibility};
use crate::domain::{Chfid, Gender, Id, Insuree, InsureePolicy, MemberPolicy, Policy};
use crate::store::{codec, Store, StoreError, TxError, TxResult, WriteTx};

pub const NS_LOG: &str = "facility.log";
pub const NS_DAILY: &str = "facility.daily";

/// What a facility is told about a patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub patient: Insuree,
    /// The family's village name (empty if unknown here).
    pub village: String,
    pub eligibility: Eligibility,
    /// The family's members covered on the visit date (the patient among them if covered).
    pub covered_members: Vec<Insuree>,
}

impl Answer {
    pub fn sex(&self) -> char {
        match self.patient.gender {
            Gender::Male => 'M',
            Gender::Female => 'F',
            Gender::Other => 'O',
        }
    }

    pub fn year_of_birth(&self) -> i32 {
        self.patient.dob.year()
    }
}

/// One family policy with its member rows.
type PolicyRows = (Policy, Vec<InsureePolicy>);

fn eligibility_of(member: Id, policies: &[PolicyRows], visit: NaiveDate) -> Eligibility {
    let mp: Vec<MemberPolicy<'_>> = policies
        .iter()
        .map(|(p, rows)| MemberPolicy {
            product: p.product,
            policy: p.id,
            status: p.status,
            policy_expiry: p.expiry_date,
            row: rows.iter().find(|r| r.insuree == member),
        })
        .collect();
    eligibility(&mp, visit)
}

/// The answer for `chfid` on `visit`; `None` if no member has that number.
pub fn answer(store: &Store, chfid: Chfid, visit: NaiveDate) -> Result<Option<Answer>, StoreError> {
    let Some(patient) = store.insuree_by_chfid(chfid)? else {
        return Ok(None);
    };
    let mut policies = Vec::new();
    for p in store.family_policies(patient.family)? {
        let rows = store.insuree_policies_of_policy(p.id)?;
        policies.push((p, rows));
    }
    let village = match store.family(patient.family)? {
        Some(f) => store
            .location(f.village)?
            .map(|l| l.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let covered_members = store
        .family_members(patient.family)?
        .into_iter()
        .filter(|m| eligibility_of(m.id, &policies, visit).reason.covered())
        .collect();
    Ok(Some(Answer {
        eligibility: eligibility_of(patient.id, &policies, visit),
        patient,
        village,
        covered_members,
    }))
}

/// How a verification was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    Ussd,
    Sms,
}

/// One verification, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub hf: String,
    /// The staff phone, masked (`Msisdn::masked`).
    pub staff: String,
    pub chfid: String,
    /// A [`Reason::code`], or `unknown_chfid`.
    pub outcome: String,
    pub at_ms: i64,
    pub channel: Channel,
}

pub const UNKNOWN_CHFID: &str = "unknown_chfid";

/// The outcome to record for an answer (or none: the CHFID is no member's).
pub fn outcome(a: Option<&Answer>) -> &'static str {
    a.map_or(UNKNOWN_CHFID, |a| a.eligibility.reason.code())
}

fn day_key(day: NaiveDate, hf: &str) -> Vec<u8> {
    format!("{}/{hf}", day.format("%Y-%m-%d")).into_bytes()
}

/// Records `r` and counts it for its facility's EAT day, in the caller's transaction.
pub fn record_in(tx: &mut WriteTx<'_>, r: &Record) -> Result<(), TxError> {
    let id = tx.next_id()?;
    let mut key = r.hf.as_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(&id.to_be_bytes());
    tx.aux_put(NS_LOG, &key, &codec::encode_aux(r)?)?;
    let day = DateTime::<Utc>::from_timestamp_millis(r.at_ms)
        .map(crate::domain::eat_date)
        .unwrap_or_default();
    let dk = day_key(day, &r.hf);
    let n = tx
        .aux_get(NS_DAILY, &dk)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes);
    tx.aux_put(NS_DAILY, &dk, &(n + 1).to_be_bytes())
}

/// Records `r` on its own (the USSD path), durably enough for a count: unflushed, like the
/// session it belongs to.
pub fn record(store: &Store, r: &Record) -> Result<(), StoreError> {
    store
        .write(|tx| -> TxResult<()> { Ok(record_in(tx, r)?) })
        .map_err(StoreError::from)
}

/// Every recorded verification of facility `hf`, oldest first.
pub fn records(store: &Store, hf: &str) -> Result<Vec<Record>, StoreError> {
    let mut prefix = hf.as_bytes().to_vec();
    prefix.push(b'/');
    store
        .aux_scan(NS_LOG, &prefix)?
        .iter()
        .map(|(_, v)| codec::decode_aux(v))
        .collect()
}

/// The verifications of `day` (EAT) per facility code.
pub fn daily_counts(store: &Store, day: NaiveDate) -> Result<Vec<(String, u64)>, StoreError> {
    let prefix = format!("{}/", day.format("%Y-%m-%d"));
    Ok(store
        .aux_scan(NS_DAILY, prefix.as_bytes())?
        .into_iter()
        .filter_map(|(k, v)| {
            let hf = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let n = u64::from_be_bytes(<[u8; 8]>::try_from(v.as_slice()).ok()?);
            Some((hf, n))
        })
        .collect())
}

/// Prometheus lines for `GET /metrics`: today's (EAT) count per facility. One short prefix
/// scan: one key per facility that verified today. Labels are HF codes (registered by an
/// administrator: bounded), never phones.
pub fn metrics_text(store: &Store, now: DateTime<Utc>) -> String {
    let mut out = String::from(
        "# HELP facility_verifications_today Cover verifications by facility staff today (EAT).\n\
         # TYPE facility_verifications_today gauge\n",
    );
    let today = crate::domain::eat_date(now);
    match daily_counts(store, today) {
        Ok(counts) => {
            for (hf, n) in counts {
                let _ = writeln!(out, "facility_verifications_today{{hf=\"{hf}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "facility counts unreadable for /metrics"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(hf: &str, at: &str) -> Record {
        Record {
            hf: hf.into(),
            staff: "255******001".into(),
            chfid: "070707070".into(),
            outcome: "covered".into(),
            at_ms: DateTime::parse_from_rfc3339(at).unwrap().timestamp_millis(),
            channel: Channel::Ussd,
        }
    }

    #[test]
    fn counted_per_facility_and_east_africa_day() {
        let store = Store::open_temporary().unwrap();
        // 22:30 UTC on 1 March is 01:30 EAT on 2 March.
        record(&store, &rec("DSP001", "2026-03-01T20:00:00Z")).unwrap();
        record(&store, &rec("DSP001", "2026-03-01T22:30:00Z")).unwrap();
        record(&store, &rec("DSP001", "2026-03-02T08:00:00Z")).unwrap();
        record(&store, &rec("HC002", "2026-03-02T09:00:00Z")).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        assert_eq!(
            daily_counts(&store, day(1)).unwrap(),
            vec![("DSP001".into(), 1)]
        );
        assert_eq!(
            daily_counts(&store, day(2)).unwrap(),
            vec![("DSP001".into(), 2), ("HC002".into(), 1)]
        );
        assert_eq!(records(&store, "DSP001").unwrap().len(), 3);
        let now = DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
            .unwrap()
            .to_utc();
        let text = metrics_text(&store, now);
        assert!(
            text.contains("facility_verifications_today{hf=\"DSP001\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("facility_verifications_today{hf=\"HC002\"} 1\n"),
            "{text}"
        );
    }
}
