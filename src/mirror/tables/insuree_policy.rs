//! `tblInsureePolicy` ↔ [`InsureePolicy`]. No UUID: a row is found by its natural key.

use super::prelude::*;
use crate::domain::InsureePolicy;

const INSUREE: Col = Col::new("InsureeID", Ty::I32);
const POLICY: Col = Col::new("PolicyId", Ty::I32);
const ENROLLMENT_DATE: Col = Col::new("EnrollmentDate", Ty::Date);
const START_DATE: Col = Col::new("StartDate", Ty::Date);
const EFFECTIVE_DATE: Col = Col::new("EffectiveDate", Ty::Date);
const EXPIRY_DATE: Col = Col::new("ExpiryDate", Ty::Date);

pub const DESC: Desc = Desc {
    kind: "insuree_policy",
    table: Table {
        name: "tblInsureePolicy",
        pk: "InsureePolicyID",
        uuid: None,
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblInsureePolicy_InsureePolicyID_seq",
        columns: &[
            INSUREE,
            POLICY,
            ENROLLMENT_DATE,
            START_DATE,
            EFFECTIVE_DATE,
            EXPIRY_DATE,
        ],
        unmapped: &["isOffline"],
    },
    natural_key: &[INSUREE, POLICY],
    pull: Some(Pull::PLAIN),
};

impl Mapped for InsureePolicy {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        vec![("insuree", self.insuree), ("policy", self.policy)]
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            INSUREE.int(Some(refs.get(("insuree", self.insuree))?)),
            POLICY.int(Some(refs.get(("policy", self.policy))?)),
            ENROLLMENT_DATE.date(Some(self.enrollment_date)),
            START_DATE.date(Some(self.start_date)),
            EFFECTIVE_DATE.date(self.effective_date),
            EXPIRY_DATE.date(Some(self.expiry_date)),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let start = r.required(START_DATE, r.date(START_DATE)?)?;
        Ok(Some(InsureePolicy {
            id,
            insuree: ids.get("insuree", r.required(INSUREE, r.int(INSUREE)?)?)?,
            policy: ids.get("policy", r.required(POLICY, r.int(POLICY)?)?)?,
            enrollment_date: r.date(ENROLLMENT_DATE)?.unwrap_or(start),
            start_date: start,
            effective_date: r.date(EFFECTIVE_DATE)?,
            expiry_date: r.date(EXPIRY_DATE)?.unwrap_or(start),
        }))
    }
}
