//! `tblPolicy` ↔ [`Policy`].

use super::prelude::*;
use super::{cents, money};
use crate::domain::{Policy, PolicyStage, PolicyStatus};

const FAMILY: Col = Col::new("FamilyID", Ty::I32);
const ENROLL_DATE: Col = Col::new("EnrollDate", Ty::Date);
const START_DATE: Col = Col::new("StartDate", Ty::Date);
const EFFECTIVE_DATE: Col = Col::new("EffectiveDate", Ty::Date);
const EXPIRY_DATE: Col = Col::new("ExpiryDate", Ty::Date);
const STATUS: Col = Col::new("PolicyStatus", Ty::I16);
const VALUE: Col = Col::new("PolicyValue", Ty::Money);
const PRODUCT: Col = Col::new("ProdID", Ty::I32);
const OFFICER: Col = Col::new("OfficerID", Ty::I32);
const STAGE: Col = Col::new("PolicyStage", Ty::Text);

pub const DESC: Desc = Desc {
    kind: "policy",
    table: Table {
        name: "tblPolicy",
        pk: "PolicyID",
        uuid: Some("PolicyUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblPolicy_PolicyID_seq",
        columns: &[
            FAMILY,
            ENROLL_DATE,
            START_DATE,
            EFFECTIVE_DATE,
            EXPIRY_DATE,
            STATUS,
            VALUE,
            PRODUCT,
            OFFICER,
            STAGE,
        ],
        unmapped: &["isOffline", "Source", "SourceVersion"],
    },
    natural_key: &[],
    pull: Some(Pull::PLAIN),
};

/// A stage code; anything but `R` (renewal) is a new policy, as in openIMIS.
pub(super) fn stage(code: Option<&str>) -> PolicyStage {
    if code == Some("R") {
        PolicyStage::Renewal
    } else {
        PolicyStage::New
    }
}

impl Mapped for Policy {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        let mut v = vec![("family", self.family), ("product", self.product)];
        v.extend(self.officer.map(|p| ("officer", p)));
        v
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            FAMILY.int(Some(refs.get(("family", self.family))?)),
            ENROLL_DATE.date(Some(self.enroll_date)),
            START_DATE.date(Some(self.start_date)),
            EFFECTIVE_DATE.date(self.effective_date),
            EXPIRY_DATE.date(Some(self.expiry_date)),
            STATUS.int(Some(i64::from(self.status.code()))),
            VALUE.int(cents(self.value)),
            PRODUCT.int(Some(refs.get(("product", self.product))?)),
            OFFICER.int(refs.opt(self.officer.map(|p| ("officer", p)))?),
            STAGE.text(Some(self.stage.code().to_string())),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let status = r.int(STATUS)?;
        let status = status
            .and_then(|s| i16::try_from(s).ok())
            .and_then(PolicyStatus::from_code)
            .ok_or_else(|| r.bad(format!("{} {status:?}", STATUS.name)))?;
        let start = r.required(START_DATE, r.date(START_DATE)?)?;
        Ok(Some(Policy {
            id,
            uuid: r.uuid()?,
            family: ids.get("family", r.required(FAMILY, r.int(FAMILY)?)?)?,
            product: ids.get("product", r.required(PRODUCT, r.int(PRODUCT)?)?)?,
            officer: ids.opt("officer", r.int(OFFICER)?)?,
            stage: stage(r.text(STAGE)?.as_deref()),
            status,
            value: money(r.int(VALUE)?),
            enroll_date: r.required(ENROLL_DATE, r.date(ENROLL_DATE)?)?,
            start_date: start,
            effective_date: r.date(EFFECTIVE_DATE)?,
            expiry_date: r.date(EXPIRY_DATE)?.unwrap_or(start),
            // Local-only: the pull keeps the store's (see `pull::apply`).
            self_renewed: false,
        }))
    }
}
