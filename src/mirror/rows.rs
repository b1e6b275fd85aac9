//! Our records as openIMIS rows: which table, which columns, which references.
//!
//! Owns: the column mapping of every mirrored entity (one function per table) and the
//! table specs ([`sql::Table`]) with their exact audit column names and sequences.
//! Must never: touch the database (see [`super::writer`]) or resolve ids itself: it names
//! the references it needs and receives their central ids.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::sql::{Row, Table, Val};
use super::MirrorError;
use crate::domain::{
    ControlNumber, ControlNumberStatus, Family, Id, Insuree, InsureePolicy, Location, Officer,
    Payment, PaymentDetail, Policy, Premium, Product,
};
use crate::store::codec::decode;

/// `AuditUserID` of rows written on behalf of the system (the ePayment procedures' −1).
pub const AUDIT_SYSTEM: i32 = -1;

pub const LOCATIONS: Table = Table {
    name: "tblLocations",
    pk: "LocationId",
    uuid: Some("LocationUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserId",
    seq: "tblLocations_LocationId_seq",
    copy: &[
        "LocationCode",
        "LocationName",
        "LocationType",
        "ParentLocationId",
        "MalePopulation",
        "FemalePopulation",
        "OtherPopulation",
        "Families",
    ],
};

pub const PRODUCTS: Table = Table {
    name: "tblProduct",
    pk: "ProdID",
    uuid: Some("ProdUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblProduct_ProdID_seq",
    copy: &[
        "ProductCode",
        "ProductName",
        "LocationId",
        "DateFrom",
        "DateTo",
        "ConversionProdID",
        "InsurancePeriod",
        "AdministrationPeriod",
        "LumpSum",
        "MemberCount",
        "Threshold",
        "PremiumAdult",
        "PremiumChild",
        "RegistrationLumpSum",
        "RegistrationFee",
        "GeneralAssemblyLumpSum",
        "GeneralAssemblyFee",
        "StartCycle1",
        "StartCycle2",
        "StartCycle3",
        "StartCycle4",
        "GracePeriod",
        "GracePeriodRenewal",
        "WaitingPeriod",
        "MaxInstallments",
        "EnrolmentDiscountPerc",
        "EnrolmentDiscountPeriod",
        "RenewalDiscountPerc",
        "RenewalDiscountPeriod",
        "Recurrence",
        "AccCodePremiums",
    ],
};

pub const OFFICERS: Table = Table {
    name: "tblOfficer",
    pk: "OfficerID",
    uuid: Some("OfficerUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblOfficer_OfficerID_seq",
    copy: &[
        "Code",
        "LastName",
        "OtherNames",
        "DOB",
        "Phone",
        "LocationId",
        "OfficerIDSubst",
        "WorksTo",
        "VEOCode",
        "VEOLastName",
        "VEOOtherNames",
        "VEODOB",
        "VEOPhone",
        "EmailId",
        "PhoneCommunication",
        "permanentaddress",
        "HasLogin",
    ],
};

pub const FAMILIES: Table = Table {
    name: "tblFamilies",
    pk: "FamilyID",
    uuid: Some("FamilyUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblFamilies_FamilyID_seq",
    copy: &[
        "InsureeID",
        "LocationId",
        "Poverty",
        "FamilyType",
        "FamilyAddress",
        "isOffline",
        "Ethnicity",
        "ConfirmationNo",
        "ConfirmationType",
        "Source",
        "SourceVersion",
    ],
};

pub const INSUREES: Table = Table {
    name: "tblInsuree",
    pk: "InsureeID",
    uuid: Some("InsureeUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblInsuree_InsureeID_seq",
    copy: &[
        "FamilyID",
        "CHFID",
        "LastName",
        "OtherNames",
        "DOB",
        "Gender",
        "Marital",
        "IsHead",
        "passport",
        "Phone",
        "PhotoID",
        "PhotoDate",
        "CardIssued",
        "Relationship",
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
};

pub const POLICIES: Table = Table {
    name: "tblPolicy",
    pk: "PolicyID",
    uuid: Some("PolicyUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblPolicy_PolicyID_seq",
    copy: &[
        "FamilyID",
        "EnrollDate",
        "StartDate",
        "EffectiveDate",
        "ExpiryDate",
        "PolicyStatus",
        "PolicyValue",
        "ProdID",
        "OfficerID",
        "PolicyStage",
        "isOffline",
        "Source",
        "SourceVersion",
    ],
};

pub const INSUREE_POLICIES: Table = Table {
    name: "tblInsureePolicy",
    pk: "InsureePolicyID",
    uuid: None,
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblInsureePolicy_InsureePolicyID_seq",
    copy: &[
        "InsureeID",
        "PolicyId",
        "EnrollmentDate",
        "StartDate",
        "EffectiveDate",
        "ExpiryDate",
        "isOffline",
    ],
};

pub const PREMIUMS: Table = Table {
    name: "tblPremium",
    pk: "PremiumId",
    uuid: Some("PremiumUUID"),
    uuid_is_uuid_type: false,
    audit: "AuditUserID",
    seq: "tblPremium_PremiumId_seq",
    copy: &[
        "PolicyID",
        "PayerID",
        "Amount",
        "Receipt",
        "PayDate",
        "PayType",
        "isPhotoFee",
        "isOffline",
        "ReportingId",
        "CreatedDate",
        "Source",
        "SourceVersion",
    ],
};

pub const PAYMENTS: Table = Table {
    name: "tblPayment",
    pk: "PaymentID",
    uuid: Some("PaymentUUID"),
    uuid_is_uuid_type: true,
    audit: "AuditedUSerID",
    seq: "tblPayment_PaymentID_seq",
    copy: &[
        "ExpectedAmount",
        "ReceivedAmount",
        "OfficerCode",
        "PhoneNumber",
        "RequestDate",
        "ReceivedDate",
        "PaymentStatus",
        "TransactionNo",
        "PaymentOrigin",
        "MatchedDate",
        "ReceiptNo",
        "PaymentDate",
        "RejectedReason",
        "DateLastSMS",
        "LanguageName",
        "TypeOfPayment",
        "TransferFee",
        "PayerPhoneNumber",
    ],
};

pub const PAYMENT_DETAILS: Table = Table {
    name: "tblPaymentDetails",
    pk: "PaymentDetailsID",
    uuid: None,
    uuid_is_uuid_type: false,
    audit: "AuditedUserId",
    seq: "tblPaymentDetails_PaymentDetailsID_seq",
    copy: &[
        "PaymentID",
        "ProductCode",
        "InsuranceNumber",
        "PolicyStage",
        "Amount",
        "PremiumID",
        "enrollmentDate",
        "ExpectedAmount",
    ],
};

pub const CONTROL_NUMBERS: Table = Table {
    name: "tblControlNumber",
    pk: "ControlNumberID",
    uuid: None,
    uuid_is_uuid_type: false,
    audit: "AuditedUserID",
    seq: "tblControlNumber_ControlNumberID_seq",
    copy: &[
        "RequestedDate",
        "ReceivedDate",
        "RequestOrigin",
        "ResponseOrigin",
        "Status",
        "PaymentID",
        "ControlNumber",
        "IssuedDate",
        "Comment",
    ],
};

/// A decoded mirror write.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    Location(Location),
    Product(Product),
    Officer(Officer),
    Family(Family),
    Insuree(Insuree),
    Policy(Policy),
    InsureePolicy(InsureePolicy),
    Premium(Premium),
    Payment(Payment),
    ControlNumber(ControlNumber),
}

/// A reference to another entity: its kind and local id.
pub type Ref = (&'static str, Id);

/// Central ids of the references an entity needs.
pub type Resolved = HashMap<Ref, i64>;

fn dec<T: serde::de::DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T, MirrorError> {
    decode(bytes).map_err(|source| MirrorError::Decode {
        kind: kind.to_string(),
        source,
    })
}

fn ts(d: NaiveDate) -> Option<DateTime<Utc>> {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

fn money(m: crate::domain::Money) -> Val {
    Val::Money(Some(m.cents()))
}

fn i32v(v: u32) -> Val {
    Val::I32(Some(i32::try_from(v).unwrap_or(i32::MAX)))
}

fn i16v(v: u32) -> Val {
    Val::I16(Some(i16::try_from(v).unwrap_or(i16::MAX)))
}

impl Entity {
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<Entity, MirrorError> {
        Ok(match kind {
            "location" => Entity::Location(dec(kind, bytes)?),
            "product" => Entity::Product(dec(kind, bytes)?),
            "officer" => Entity::Officer(dec(kind, bytes)?),
            "family" => Entity::Family(dec(kind, bytes)?),
            "insuree" => Entity::Insuree(dec(kind, bytes)?),
            "policy" => Entity::Policy(dec(kind, bytes)?),
            "insuree_policy" => Entity::InsureePolicy(dec(kind, bytes)?),
            "premium" => Entity::Premium(dec(kind, bytes)?),
            "payment" => Entity::Payment(dec(kind, bytes)?),
            "control_number" => Entity::ControlNumber(dec(kind, bytes)?),
            other => return Err(MirrorError::UnknownKind(other.to_string())),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Entity::Location(_) => "location",
            Entity::Product(_) => "product",
            Entity::Officer(_) => "officer",
            Entity::Family(_) => "family",
            Entity::Insuree(_) => "insuree",
            Entity::Policy(_) => "policy",
            Entity::InsureePolicy(_) => "insuree_policy",
            Entity::Premium(_) => "premium",
            Entity::Payment(_) => "payment",
            Entity::ControlNumber(_) => "control_number",
        }
    }

    pub fn id(&self) -> Id {
        match self {
            Entity::Location(r) => r.id,
            Entity::Product(r) => r.id,
            Entity::Officer(r) => r.id,
            Entity::Family(r) => r.id,
            Entity::Insuree(r) => r.id,
            Entity::Policy(r) => r.id,
            Entity::InsureePolicy(r) => r.id,
            Entity::Premium(r) => r.id,
            Entity::Payment(r) => r.id,
            Entity::ControlNumber(r) => r.id,
        }
    }

    pub fn table(&self) -> &'static Table {
        match self {
            Entity::Location(_) => &LOCATIONS,
            Entity::Product(_) => &PRODUCTS,
            Entity::Officer(_) => &OFFICERS,
            Entity::Family(_) => &FAMILIES,
            Entity::Insuree(_) => &INSUREES,
            Entity::Policy(_) => &POLICIES,
            Entity::InsureePolicy(_) => &INSUREE_POLICIES,
            Entity::Premium(_) => &PREMIUMS,
            Entity::Payment(_) => &PAYMENTS,
            Entity::ControlNumber(_) => &CONTROL_NUMBERS,
        }
    }

    /// The entity's UUID, for tables that have one.
    pub fn uuid(&self) -> Option<Uuid> {
        match self {
            Entity::Location(r) => Some(r.uuid),
            Entity::Product(r) => Some(r.uuid),
            Entity::Officer(r) => Some(r.uuid),
            Entity::Family(r) => Some(r.uuid),
            Entity::Insuree(r) => Some(r.uuid),
            Entity::Policy(r) => Some(r.uuid),
            Entity::Premium(r) => Some(r.uuid),
            Entity::Payment(r) => Some(r.uuid),
            Entity::InsureePolicy(_) | Entity::ControlNumber(_) => None,
        }
    }

    pub fn audit_user(&self, configured: i32) -> i32 {
        match self {
            Entity::Payment(_) | Entity::ControlNumber(_) => AUDIT_SYSTEM,
            _ => configured,
        }
    }

    /// The other entities whose central ids the row needs.
    pub fn refs(&self) -> Vec<Ref> {
        let mut v: Vec<Ref> = Vec::new();
        match self {
            Entity::Location(r) => v.extend(r.parent.map(|p| ("location", p))),
            Entity::Product(r) => {
                v.extend(r.location.map(|p| ("location", p)));
                v.extend(r.conversion.map(|p| ("product", p)));
            }
            Entity::Officer(r) => {
                v.extend(r.district.map(|p| ("location", p)));
                v.extend(r.substitute.map(|p| ("officer", p)));
                v.extend(r.villages.iter().map(|p| ("location", *p)));
            }
            Entity::Family(r) => {
                v.push(("insuree", r.head));
                v.push(("location", r.village));
            }
            Entity::Insuree(r) => v.push(("family", r.family)),
            Entity::Policy(r) => {
                v.push(("family", r.family));
                v.push(("product", r.product));
                v.extend(r.officer.map(|p| ("officer", p)));
            }
            Entity::InsureePolicy(r) => {
                v.push(("insuree", r.insuree));
                v.push(("policy", r.policy));
            }
            Entity::Premium(r) => v.push(("policy", r.policy)),
            Entity::Payment(r) => v.extend(
                r.details
                    .iter()
                    .filter_map(|d| d.premium)
                    .map(|p| ("premium", p)),
            ),
            Entity::ControlNumber(r) => v.extend(r.payment.map(|p| ("payment", p))),
        }
        v
    }

    /// The natural key of a row without a UUID, given the row.
    pub fn natural_key(&self, row: &Row) -> Option<Row> {
        let pick = |cols: &[&str]| -> Row {
            row.iter()
                .filter(|(c, _)| cols.contains(c))
                .cloned()
                .collect()
        };
        match self {
            Entity::InsureePolicy(_) => Some(pick(&["InsureeID", "PolicyId"])),
            Entity::ControlNumber(_) => Some(pick(&["ControlNumber"])),
            _ => None,
        }
    }

    /// The row's columns (without pk, UUID, validity and audit columns).
    pub fn row(&self, refs: &Resolved) -> Result<Row, MirrorError> {
        let me = (self.kind(), self.id());
        let get = |r: Ref| -> Result<i64, MirrorError> {
            refs.get(&r).copied().ok_or(MirrorError::MissingRef {
                kind: me.0,
                id: me.1,
                ref_kind: r.0,
                ref_id: r.1,
            })
        };
        let opt32 = |r: Option<Ref>| -> Result<Val, MirrorError> {
            Ok(Val::I32(match r {
                Some(r) => Some(get(r)? as i32),
                None => None,
            }))
        };
        let i32of = |r: Ref| -> Result<Val, MirrorError> { Ok(Val::I32(Some(get(r)? as i32))) };
        Ok(match self {
            Entity::Location(r) => vec![
                ("LocationCode", Val::text(&r.code)),
                ("LocationName", Val::text(&r.name)),
                ("LocationType", Val::text(r.kind.code().to_string())),
                (
                    "ParentLocationId",
                    opt32(r.parent.map(|p| ("location", p)))?,
                ),
            ],
            Entity::Product(r) => {
                let mut row = vec![
                    ("ProductCode", Val::text(&r.code)),
                    ("ProductName", Val::text(&r.name)),
                    ("LocationId", opt32(r.location.map(|p| ("location", p)))?),
                    ("DateFrom", Val::Ts(ts(r.sale_from))),
                    ("DateTo", Val::Ts(ts(r.sale_to))),
                    (
                        "ConversionProdID",
                        opt32(r.conversion.map(|p| ("product", p)))?,
                    ),
                    ("InsurancePeriod", i16v(r.insurance_period_months)),
                    ("AdministrationPeriod", i32v(r.administration_period_months)),
                    ("LumpSum", money(r.lump_sum)),
                    ("MemberCount", i16v(r.member_count)),
                    ("Threshold", i32v(r.threshold)),
                    ("PremiumAdult", money(r.premium_adult)),
                    ("PremiumChild", money(r.premium_child)),
                    ("RegistrationLumpSum", money(r.registration_lump_sum)),
                    ("RegistrationFee", money(r.registration_fee)),
                    ("GeneralAssemblyLumpSum", money(r.assembly_lump_sum)),
                    ("GeneralAssemblyFee", money(r.assembly_fee)),
                    ("GracePeriod", i32v(r.grace_period_enrolment_months)),
                    ("GracePeriodRenewal", i32v(r.grace_period_renewal_months)),
                    ("WaitingPeriod", i32v(r.grace_period_payment_months)),
                    ("MaxInstallments", i32v(r.max_installments)),
                    (
                        "EnrolmentDiscountPerc",
                        i32v(u32::from(r.enrolment_discount.perc)),
                    ),
                    (
                        "EnrolmentDiscountPeriod",
                        i32v(r.enrolment_discount.period_months),
                    ),
                    (
                        "RenewalDiscountPerc",
                        i32v(u32::from(r.renewal_discount.perc)),
                    ),
                    (
                        "RenewalDiscountPeriod",
                        i32v(r.renewal_discount.period_months),
                    ),
                    ("AccCodePremiums", Val::Text(r.sp_code.clone())),
                ];
                for (i, col) in ["StartCycle1", "StartCycle2", "StartCycle3", "StartCycle4"]
                    .into_iter()
                    .enumerate()
                {
                    let c = r
                        .cycles
                        .get(i)
                        .map(|c| format!("{:02}-{:02}", c.day, c.month));
                    row.push((col, Val::Text(c)));
                }
                row
            }
            Entity::Officer(r) => vec![
                ("Code", Val::text(&r.code)),
                ("LastName", Val::text(&r.last_name)),
                ("OtherNames", Val::text(&r.other_names)),
                (
                    "Phone",
                    Val::Text(r.phone.as_ref().map(|p| p.as_str().to_string())),
                ),
                ("LocationId", opt32(r.district.map(|p| ("location", p)))?),
                (
                    "OfficerIDSubst",
                    opt32(r.substitute.map(|p| ("officer", p)))?,
                ),
                ("WorksTo", Val::Ts(r.works_to.and_then(ts))),
                ("PhoneCommunication", Val::Bool(Some(r.phone_communication))),
            ],
            Entity::Family(r) => vec![
                ("InsureeID", i32of(("insuree", r.head))?),
                ("LocationId", i32of(("location", r.village))?),
                ("Poverty", Val::Bool(Some(r.poverty))),
            ],
            Entity::Insuree(r) => vec![
                ("FamilyID", i32of(("family", r.family))?),
                ("CHFID", Val::text(r.chfid.to_string())),
                ("LastName", Val::text(&r.last_name)),
                ("OtherNames", Val::text(&r.other_names)),
                ("DOB", Val::Date(Some(r.dob))),
                ("Gender", Val::text(r.gender.code().to_string())),
                ("IsHead", Val::Bool(Some(r.is_head))),
                (
                    "Phone",
                    Val::Text(r.phone.as_ref().map(|p| p.as_str().to_string())),
                ),
                ("CardIssued", Val::Bool(Some(r.card_issued))),
                (
                    "Relationship",
                    Val::I16(r.relationship.map(|x| i16::from(x.id()))),
                ),
            ],
            Entity::Policy(r) => vec![
                ("FamilyID", i32of(("family", r.family))?),
                ("EnrollDate", Val::Date(Some(r.enroll_date))),
                ("StartDate", Val::Date(Some(r.start_date))),
                ("EffectiveDate", Val::Date(r.effective_date)),
                ("ExpiryDate", Val::Date(Some(r.expiry_date))),
                ("PolicyStatus", Val::I16(Some(r.status.code()))),
                ("PolicyValue", money(r.value)),
                ("ProdID", i32of(("product", r.product))?),
                ("OfficerID", opt32(r.officer.map(|p| ("officer", p)))?),
                ("PolicyStage", Val::text(r.stage.code().to_string())),
            ],
            Entity::InsureePolicy(r) => vec![
                ("InsureeID", i32of(("insuree", r.insuree))?),
                ("PolicyId", i32of(("policy", r.policy))?),
                ("EnrollmentDate", Val::Date(Some(r.enrollment_date))),
                ("StartDate", Val::Date(Some(r.start_date))),
                ("EffectiveDate", Val::Date(r.effective_date)),
                ("ExpiryDate", Val::Date(Some(r.expiry_date))),
            ],
            Entity::Premium(r) => vec![
                ("PolicyID", i32of(("policy", r.policy))?),
                ("Amount", money(r.amount)),
                ("Receipt", Val::text(&r.receipt)),
                ("PayDate", Val::Date(Some(r.pay_date))),
                ("PayType", Val::text(r.pay_type.code().to_string())),
                ("isPhotoFee", Val::Bool(Some(r.is_photo_fee))),
            ],
            Entity::Payment(r) => vec![
                ("ExpectedAmount", money(r.expected_amount)),
                (
                    "ReceivedAmount",
                    Val::Money(r.received_amount.map(|m| m.cents())),
                ),
                ("OfficerCode", Val::Text(r.officer_code.clone())),
                (
                    "PhoneNumber",
                    Val::Text(r.phone.as_ref().map(|p| p.as_str().to_string())),
                ),
                ("RequestDate", Val::Ts(Some(r.request_date))),
                ("ReceivedDate", Val::Ts(r.received_date)),
                ("PaymentStatus", Val::I32(Some(r.status.code()))),
                ("TransactionNo", Val::Text(r.transaction_no.clone())),
                ("PaymentOrigin", Val::Text(r.payment_origin.clone())),
                ("MatchedDate", Val::Ts(r.matched_date)),
                ("ReceiptNo", Val::Text(r.receipt_no.clone())),
                ("PaymentDate", Val::Ts(r.payment_date)),
                ("RejectedReason", Val::Text(r.rejected_reason.clone())),
                ("LanguageName", Val::text(r.language.code())),
            ],
            Entity::ControlNumber(r) => vec![
                ("ControlNumber", Val::text(&r.number)),
                ("Status", Val::I32(Some(control_number_status(r.status)))),
                (
                    "PaymentID",
                    Val::I64(match r.payment {
                        Some(p) => Some(get(("payment", p))?),
                        None => None,
                    }),
                ),
                ("RequestedDate", Val::Ts(Some(r.requested_date))),
                ("ReceivedDate", Val::Ts(r.received_date)),
            ],
        })
    }
}

/// `tblControlNumber.Status`: openIMIS only ever writes 0 (requested); the gateway's pool
/// states follow it in the order they happen.
pub fn control_number_status(s: ControlNumberStatus) -> i32 {
    match s {
        ControlNumberStatus::Requested => 0,
        ControlNumberStatus::Pooled => 1,
        ControlNumberStatus::Assigned => 2,
        ControlNumberStatus::Cancelled => 3,
    }
}

/// One `tblPaymentDetails` row of payment `payment` (central id).
pub fn payment_detail_row(payment: i64, d: &PaymentDetail, refs: &Resolved) -> Row {
    vec![
        ("PaymentID", Val::I64(Some(payment))),
        ("ProductCode", Val::text(&d.product_code)),
        ("InsuranceNumber", Val::text(d.chfid.to_string())),
        ("PolicyStage", Val::text(d.stage.code().to_string())),
        ("Amount", Val::Money(d.amount.map(|m| m.cents()))),
        (
            "PremiumID",
            Val::I32(
                d.premium
                    .and_then(|p| refs.get(&("premium", p)))
                    .map(|v| *v as i32),
            ),
        ),
        ("ExpectedAmount", money(d.expected_amount)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Chfid, Gender, Language, SmsPreference};

    fn family() -> Family {
        Family {
            id: 10,
            uuid: Uuid::from_u128(10),
            head: 11,
            village: 1,
            poverty: true,
            sms: SmsPreference {
                approved: true,
                language: Language::En,
            },
        }
    }

    #[test]
    fn a_row_names_its_references_and_fails_clearly_when_one_is_unresolved() {
        let e = Entity::Family(family());
        assert_eq!(e.refs(), vec![("insuree", 11), ("location", 1)]);
        let mut refs = Resolved::new();
        refs.insert(("insuree", 11), 501);
        let err = e.row(&refs).unwrap_err();
        assert!(err.to_string().contains("location 1"), "{err}");
        refs.insert(("location", 1), 7);
        let row = e.row(&refs).unwrap();
        assert_eq!(row[0], ("InsureeID", Val::I32(Some(501))));
        assert_eq!(row[2], ("Poverty", Val::Bool(Some(true))));
    }

    #[test]
    fn decode_refuses_unknown_kinds_and_bad_bytes() {
        assert!(matches!(
            Entity::decode("claim", b"x"),
            Err(MirrorError::UnknownKind(_))
        ));
        assert!(matches!(
            Entity::decode("family", b"\x01"),
            Err(MirrorError::Decode { .. })
        ));
        let i = Insuree {
            id: 11,
            uuid: Uuid::from_u128(11),
            chfid: Chfid::from_base(7_070_707).unwrap(),
            family: 10,
            is_head: true,
            last_name: "Hamisi".into(),
            other_names: "Juma".into(),
            dob: NaiveDate::from_ymd_opt(1985, 6, 1).unwrap(),
            gender: Gender::Male,
            relationship: None,
            phone: None,
            card_issued: false,
        };
        let bytes = crate::store::codec::encode(&i).unwrap();
        let e = Entity::decode("insuree", &bytes).unwrap();
        assert_eq!(
            (e.kind(), e.id(), e.table().name),
            ("insuree", 11, "tblInsuree")
        );
    }
}
