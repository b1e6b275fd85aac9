//! `tblFamilies` (with its current `tblFamilySMS` row on the pull) ↔ [`Family`].

use super::prelude::*;
use crate::domain::{Family, Language, SmsPreference};
use crate::mirror::schema::{Side, VALIDITY_FROM, VALIDITY_TO};

const HEAD: Col = Col::new("InsureeID", Ty::I32);
const VILLAGE: Col = Col::new("LocationId", Ty::I32);
const POVERTY: Col = Col::new("Poverty", Ty::Bool);

/// `tblFamilySMS`, the family's SMS preference: no key, UUID or audit column. The real
/// scripts create it unquoted, so the database spells these in lower case; the writer
/// spells them as the live catalogue does ([`crate::mirror::live`]).
pub const SMS: Side = Side {
    name: "tblFamilySMS",
    pk: None,
    columns: &[
        SMS_FAMILY,
        SMS_APPROVAL,
        SMS_LANG,
        VALIDITY_FROM,
        VALIDITY_TO,
    ],
};
pub const SMS_FAMILY: &str = "FamilyID";
pub const SMS_APPROVAL: &str = "ApprovalOfSMS";
pub const SMS_LANG: &str = "LanguageOfSMS";

/// The pull's names for the family's SMS preference (`tblFamilySMS`; its columns are
/// spelled as the live catalogue spells them: lower case in the real scripts).
const SMS_APPROVED: &str = "sms_approved";
const SMS_LANGUAGE: &str = "sms_language";

pub const DESC: Desc = Desc {
    kind: "family",
    table: Table {
        name: "tblFamilies",
        pk: "FamilyID",
        uuid: Some("FamilyUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblFamilies_FamilyID_seq",
        columns: &[HEAD, VILLAGE, POVERTY],
        unmapped: &[
            "FamilyType",
            "FamilyAddress",
            "isOffline",
            "Ethnicity",
            "ConfirmationNo",
            "ConfirmationType",
            "Source",
            "SourceVersion",
        ],
    },
    natural_key: &[],
    // tblFamilySMS's columns unquoted: they fold to lower case exactly as the unquoted
    // CREATE TABLE of the real scripts folded them.
    pull: Some(Pull {
        extra: &[
            (
                SMS_APPROVED,
                r#"SELECT s.approvalofsms FROM "tblFamilySMS" s
                   WHERE s.familyid = t."FamilyID" AND s.validityto IS NULL"#,
            ),
            (
                SMS_LANGUAGE,
                r#"SELECT s.languageofsms FROM "tblFamilySMS" s
                   WHERE s.familyid = t."FamilyID" AND s.validityto IS NULL"#,
            ),
        ],
        only: None,
    }),
};

impl Mapped for Family {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        vec![("insuree", self.head), ("location", self.village)]
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            HEAD.int(Some(refs.get(("insuree", self.head))?)),
            VILLAGE.int(Some(refs.get(("location", self.village))?)),
            POVERTY.bool(Some(self.poverty)),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let lang: Option<String> = r.get(SMS_LANGUAGE)?;
        Ok(Some(Family {
            id,
            uuid: r.uuid()?,
            head: ids.get("insuree", r.required(HEAD, r.int(HEAD)?)?)?,
            village: ids.get("location", r.required(VILLAGE, r.int(VILLAGE)?)?)?,
            poverty: r.bool(POVERTY)?.unwrap_or(false),
            sms: SmsPreference {
                approved: r.get::<Option<bool>>(SMS_APPROVED)?.unwrap_or(false),
                language: lang
                    .as_deref()
                    .and_then(Language::parse)
                    .unwrap_or_default(),
            },
        }))
    }
}
