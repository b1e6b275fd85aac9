//! `tblInsuree` ↔ [`Insuree`].

use super::prelude::*;
use super::Flagged;
use super::{phone, phone_text};
use crate::domain::{Chfid, Gender, Insuree, Relationship};

const FAMILY: Col = Col::new("FamilyID", Ty::I32);
pub(super) const CHFID: Col = Col::new("CHFID", Ty::Text);
const LAST_NAME: Col = Col::new("LastName", Ty::Text);
const OTHER_NAMES: Col = Col::new("OtherNames", Ty::Text);
const DOB: Col = Col::new("DOB", Ty::Date);
const GENDER: Col = Col::new("Gender", Ty::Text);
const IS_HEAD: Col = Col::new("IsHead", Ty::Bool);
const PHONE: Col = Col::new("Phone", Ty::Text);
const CARD_ISSUED: Col = Col::new("CardIssued", Ty::Bool);
const RELATIONSHIP: Col = Col::new("Relationship", Ty::I16);

pub const DESC: Desc = Desc {
    kind: "insuree",
    table: Table {
        name: "tblInsuree",
        pk: "InsureeID",
        uuid: Some("InsureeUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblInsuree_InsureeID_seq",
        columns: &[
            FAMILY,
            CHFID,
            LAST_NAME,
            OTHER_NAMES,
            DOB,
            GENDER,
            IS_HEAD,
            PHONE,
            CARD_ISSUED,
            RELATIONSHIP,
        ],
        unmapped: &[
            "Marital",
            "passport",
            "PhotoID",
            "PhotoDate",
            "Profession",
            "Education",
            "Email",
            "isOffline",
            "TypeOfId",
            "HFID",
            "CurrentAddress",
            "GeoLocation",
            "CurrentVillage",
            "Vulnerability",
            "Source",
            "SourceVersion",
        ],
    },
    natural_key: &[],
    pull: Some(Pull::PLAIN),
};

/// A central insurance number, as a CHFID: taken as it is, never held to the typed-number
/// rule (`[domain]`), which the central data need not pass.
pub(super) fn chfid(r: &Named<'_>, col: &str, s: &str) -> Result<Chfid, MirrorError> {
    Chfid::from_central(s).map_err(|e| r.invalid(col, s, e))
}

/// What our input rules would have refused in a central insuree row (counted, kept).
pub(super) fn flag(r: &Named<'_>, f: &mut Flagged) -> Result<(), MirrorError> {
    f.chfid(r.text(CHFID)?.as_deref().unwrap_or(""));
    f.phone(r.text(PHONE)?.as_deref());
    f.name(r.text(LAST_NAME)?.as_deref());
    f.name(r.text(OTHER_NAMES)?.as_deref());
    Ok(())
}

impl Mapped for Insuree {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        vec![("family", self.family)]
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            FAMILY.int(Some(refs.get(("family", self.family))?)),
            CHFID.text(Some(self.chfid.to_string())),
            LAST_NAME.text(Some(self.last_name.clone())),
            OTHER_NAMES.text(Some(self.other_names.clone())),
            DOB.date(Some(self.dob)),
            GENDER.text(Some(self.gender.code().to_string())),
            IS_HEAD.bool(Some(self.is_head)),
            PHONE.text(phone_text(&self.phone)),
            CARD_ISSUED.bool(Some(self.card_issued)),
            RELATIONSHIP.int(self.relationship.map(|x| i64::from(x.id()))),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let chfid = chfid(r, CHFID.name, r.text(CHFID)?.as_deref().unwrap_or(""))?;
        Ok(Some(Insuree {
            id,
            uuid: r.uuid()?,
            chfid,
            family: ids.get("family", r.required(FAMILY, r.int(FAMILY)?)?)?,
            // Kept as openIMIS holds them, even empty (counted by `flag`).
            last_name: r.text(LAST_NAME)?.unwrap_or_default(),
            other_names: r.text(OTHER_NAMES)?.unwrap_or_default(),
            dob: r.required(DOB, r.date(DOB)?)?,
            gender: r
                .text(GENDER)?
                .and_then(|g| g.chars().next())
                .and_then(Gender::from_code)
                .unwrap_or(Gender::Other),
            is_head: r.required(IS_HEAD, r.bool(IS_HEAD)?)?,
            phone: phone(r.text(PHONE)?),
            card_issued: r.required(CARD_ISSUED, r.bool(CARD_ISSUED)?)?,
            relationship: r
                .int(RELATIONSHIP)?
                .and_then(|x| u8::try_from(x).ok())
                .and_then(Relationship::from_id),
        }))
    }
}
