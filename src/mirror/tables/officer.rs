//! `tblOfficer` (with its `tblOfficerVillages` rows on the pull) ↔ [`Officer`].

use super::prelude::*;
use super::Flagged;
use super::{midnight, phone, phone_text};
use crate::domain::{Language, Officer};
use crate::mirror::schema::{Side, VALIDITY_FROM, VALIDITY_TO};

const CODE: Col = Col::new("Code", Ty::Text);
const LAST_NAME: Col = Col::new("LastName", Ty::Text);
const OTHER_NAMES: Col = Col::new("OtherNames", Ty::Text);
const PHONE: Col = Col::new("Phone", Ty::Text);
const DISTRICT: Col = Col::new("LocationId", Ty::I32);
const SUBSTITUTE: Col = Col::new("OfficerIDSubst", Ty::I32);
const WORKS_TO: Col = Col::new("WorksTo", Ty::Ts);
const PHONE_COMMUNICATION: Col = Col::new("PhoneCommunication", Ty::Bool);

// `tblOfficerVillages`, the officer's villages (one row per village): its columns, then
// the table.
pub const VILLAGE_OFFICER: &str = "OfficerId";
pub const VILLAGE_LOCATION: &str = "LocationId";
pub const VILLAGE_AUDIT: &str = "AuditUserID";
const VILLAGE_COLUMNS: [&str; 5] = [
    VILLAGE_OFFICER,
    VILLAGE_LOCATION,
    VALIDITY_FROM,
    VALIDITY_TO,
    VILLAGE_AUDIT,
];
pub const VILLAGES_TABLE: Side = Side {
    name: "tblOfficerVillages",
    pk: Some("OfficerVillageId"),
    columns: &VILLAGE_COLUMNS,
};

/// The pull's name for the officer's current villages (central location ids).
const VILLAGES: &str = "villages";

pub const DESC: Desc = Desc {
    kind: "officer",
    table: Table {
        name: "tblOfficer",
        pk: "OfficerID",
        uuid: Some("OfficerUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblOfficer_OfficerID_seq",
        columns: &[
            CODE,
            LAST_NAME,
            OTHER_NAMES,
            PHONE,
            DISTRICT,
            SUBSTITUTE,
            WORKS_TO,
            PHONE_COMMUNICATION,
        ],
        unmapped: &[
            "DOB",
            "VEOCode",
            "VEOLastName",
            "VEOOtherNames",
            "VEODOB",
            "VEOPhone",
            "EmailId",
            "permanentaddress",
            "HasLogin",
        ],
    },
    natural_key: &[],
    pull: Some(Pull {
        extra: &[(
            VILLAGES,
            r#"ARRAY(SELECT v."LocationId"::int8 FROM "tblOfficerVillages" v
               WHERE v."OfficerId" = t."OfficerID" AND v."ValidityTo" IS NULL
               AND v."LocationId" IS NOT NULL ORDER BY 1)"#,
        )],
        only: None,
    }),
};

/// What our input rules would have refused in a central officer row (counted, kept).
pub(super) fn flag(r: &Named<'_>, f: &mut Flagged) -> Result<(), MirrorError> {
    f.phone(r.text(PHONE)?.as_deref());
    f.name(r.text(LAST_NAME)?.as_deref());
    f.name(r.text(OTHER_NAMES)?.as_deref());
    Ok(())
}

impl Mapped for Officer {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        let mut v: Vec<Ref> = Vec::new();
        v.extend(self.district.map(|p| ("location", p)));
        v.extend(self.substitute.map(|p| ("officer", p)));
        v.extend(self.villages.iter().map(|p| ("location", *p)));
        v
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            CODE.text(Some(self.code.clone())),
            LAST_NAME.text(Some(self.last_name.clone())),
            OTHER_NAMES.text(Some(self.other_names.clone())),
            PHONE.text(phone_text(&self.phone)),
            DISTRICT.int(refs.opt(self.district.map(|p| ("location", p)))?),
            SUBSTITUTE.int(refs.opt(self.substitute.map(|p| ("officer", p)))?),
            WORKS_TO.ts(self.works_to.and_then(midnight)),
            PHONE_COMMUNICATION.bool(Some(self.phone_communication)),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let villages: Vec<i64> = r.get(VILLAGES)?;
        let villages = villages
            .into_iter()
            .map(|v| ids.get("location", v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Officer {
            id,
            uuid: r.uuid()?,
            code: r.required(CODE, r.text(CODE)?)?,
            // Kept as openIMIS holds them, even empty (counted by `flag`).
            last_name: r.text(LAST_NAME)?.unwrap_or_default(),
            other_names: r.text(OTHER_NAMES)?.unwrap_or_default(),
            phone: phone(r.text(PHONE)?),
            district: ids.opt("location", r.int(DISTRICT)?)?,
            villages,
            substitute: ids.opt("officer", r.int(SUBSTITUTE)?)?,
            works_to: r.ts(WORKS_TO)?.map(|t| t.date_naive()),
            phone_communication: r.bool(PHONE_COMMUNICATION)?.unwrap_or(false),
            // Local-only: the pull keeps the store's (see `pull::apply`).
            language: Language::Sw,
            pin_hash: None,
        }))
    }
}
