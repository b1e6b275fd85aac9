//! The openIMIS entities as this gateway holds them.
//!
//! Owns: the shape of every record (location, product, officer, family, insuree, policy,
//! insuree-policy, premium, payment, control number) and the openIMIS code values
//! (policy status, stage, payment status, pay type, relationship, gender).
//! Must never: do I/O, or know how a record is encoded on disk or on a wire.
//!
//! Field names follow the openIMIS columns they mirror (`tblProduct.GracePeriod` is
//! `grace_period_enrolment_months`, as the Django backend names it, because the SQL name lies).
//! Local ids are this store's own `u64`s; the central database's integer keys are mapped
//! elsewhere (the mirror), and each entity's UUID is its stable external identity.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chfid::Chfid;
use super::money::Money;
use super::phone::Msisdn;

/// A local record id, unique per entity kind within one store.
pub type Id = u64;

/// Languages a member or officer can be served in. Kiswahili is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Language {
    #[default]
    Sw,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Sw => "sw",
            Language::En => "en",
        }
    }

    /// Parses `sw`/`en` and the names openIMIS uses in `tblFamilySMS.LanguageOfSMS`.
    pub fn parse(s: &str) -> Option<Language> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sw" | "swa" | "kiswahili" | "swahili" | "sw-tz" => Some(Language::Sw),
            "en" | "eng" | "english" | "en-tz" | "en-gb" | "en-us" => Some(Language::En),
            _ => None,
        }
    }
}

/// `tblLocations.LocationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocationKind {
    Region,
    District,
    Ward,
    Village,
}

impl LocationKind {
    /// The one-letter openIMIS code (`R`, `D`, `W`, `V`).
    pub fn code(self) -> char {
        match self {
            LocationKind::Region => 'R',
            LocationKind::District => 'D',
            LocationKind::Ward => 'W',
            LocationKind::Village => 'V',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: Id,
    pub uuid: Uuid,
    pub code: String,
    pub name: String,
    pub kind: LocationKind,
    /// Village → ward → district → region; `None` only for a region.
    pub parent: Option<Id>,
}

/// A cycle start, `tblProduct.StartCycleN` ('DD-MM').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleStart {
    pub day: u32,
    pub month: u32,
}

/// An enrolment or renewal discount: `perc` percent off when the family enrols at least
/// `period_months` before the reference date (see `domain::value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Discount {
    pub perc: u8,
    pub period_months: u32,
}

/// An insurance product (`tblProduct`), with every field that drives dates and value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: Id,
    pub uuid: Uuid,
    /// `ProductCode`, at most 8 characters.
    pub code: String,
    pub name: String,
    /// `LocationId`: `None` = national; otherwise a region or district.
    pub location: Option<Id>,
    /// Sale window `DateFrom..=DateTo`.
    pub sale_from: NaiveDate,
    pub sale_to: NaiveDate,
    /// `ConversionProdID`: the product that replaces this one for renewals after `sale_to`.
    pub conversion: Option<Id>,
    /// `InsurancePeriod`, months.
    pub insurance_period_months: u32,
    /// `AdministrationPeriod`, months added to the enrol date of new policies.
    pub administration_period_months: u32,
    /// `StartCycle1..4`; empty for a free-enrolment product.
    pub cycles: Vec<CycleStart>,
    /// `GracePeriod` ("Grace Period Enrolment"), months after a cycle start.
    pub grace_period_enrolment_months: u32,
    /// `GracePeriodRenewal`, months.
    pub grace_period_renewal_months: u32,
    /// `WaitingPeriod` ("Grace Period Payment"), months a policy may stay unpaid.
    pub grace_period_payment_months: u32,
    pub lump_sum: Money,
    /// `MemberCount`: members beyond it are not counted.
    pub member_count: u32,
    /// `Threshold`: members covered by the lump sum.
    pub threshold: u32,
    pub premium_adult: Money,
    pub premium_child: Money,
    pub registration_lump_sum: Money,
    pub registration_fee: Money,
    pub assembly_lump_sum: Money,
    pub assembly_fee: Money,
    pub enrolment_discount: Discount,
    pub renewal_discount: Discount,
    pub max_installments: u32,
    /// `AccCodePremiums`: carries the GePG SP code in Tanzania.
    pub sp_code: Option<String>,
}

/// A village enrolment officer (`tblOfficer` with `tblOfficerVillages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Officer {
    pub id: Id,
    pub uuid: Uuid,
    /// `Code`, shorter than 8 characters.
    pub code: String,
    pub last_name: String,
    pub other_names: String,
    pub phone: Option<Msisdn>,
    /// `LocationId`: the officer's district.
    pub district: Option<Id>,
    pub villages: Vec<Id>,
    /// `OfficerIDSubst`.
    pub substitute: Option<Id>,
    /// `WorksTo`: last day the officer works; `None` = open-ended.
    pub works_to: Option<NaiveDate>,
    /// `PhoneCommunication`: send renewal prompts by SMS.
    pub phone_communication: bool,
    pub language: Language,
    /// PHC string of the officer's PIN (slow KDF); `None` = no PIN set yet.
    pub pin_hash: Option<String>,
}

/// `tblFamilySMS`: whether the family accepts SMS, and in which language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SmsPreference {
    pub approved: bool,
    pub language: Language,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub id: Id,
    pub uuid: Uuid,
    /// Head of family (an insuree id).
    pub head: Id,
    /// The family's village (`LocationId`, type 'V').
    pub village: Id,
    pub poverty: bool,
    pub sms: SmsPreference,
}

impl Family {
    /// A new family, not marked poor, whose head has approved SMS in `language`.
    pub fn new(id: Id, head: Id, village: Id, language: Language) -> Family {
        Family {
            id,
            uuid: Uuid::new_v4(),
            head,
            village,
            poverty: false,
            sms: SmsPreference {
                approved: true,
                language,
            },
        }
    }
}

/// `tblGender.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gender {
    Male,
    Female,
    Other,
}

impl Gender {
    pub fn code(self) -> char {
        match self {
            Gender::Male => 'M',
            Gender::Female => 'F',
            Gender::Other => 'O',
        }
    }

    pub fn from_code(c: char) -> Option<Gender> {
        match c.to_ascii_uppercase() {
            'M' => Some(Gender::Male),
            'F' => Some(Gender::Female),
            'O' => Some(Gender::Other),
            _ => None,
        }
    }
}

/// `tblRelations.RelationId`. `Others` (7) is priced outside the lump sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relationship {
    Sibling = 1,
    Parent = 2,
    UncleAunt = 3,
    Child = 4,
    Grandparent = 5,
    Employee = 6,
    Others = 7,
    Spouse = 8,
}

impl Relationship {
    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn from_id(id: u8) -> Option<Relationship> {
        use Relationship::*;
        Some(match id {
            1 => Sibling,
            2 => Parent,
            3 => UncleAunt,
            4 => Child,
            5 => Grandparent,
            6 => Employee,
            7 => Others,
            8 => Spouse,
            _ => return None,
        })
    }
}

/// A member of a family (`tblInsuree`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insuree {
    pub id: Id,
    pub uuid: Uuid,
    pub chfid: Chfid,
    pub family: Id,
    pub is_head: bool,
    pub last_name: String,
    pub other_names: String,
    pub dob: NaiveDate,
    pub gender: Gender,
    /// Relationship to the head; `None` for the head.
    pub relationship: Option<Relationship>,
    pub phone: Option<Msisdn>,
    pub card_issued: bool,
}

impl Insuree {
    /// What the value rule needs to know about this member.
    pub fn for_value(&self) -> super::value::MemberForValue {
        super::value::MemberForValue {
            dob: self.dob,
            relationship: self.relationship,
        }
    }
}

/// `tblPolicy.PolicyStage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyStage {
    New,
    Renewal,
}

impl PolicyStage {
    pub fn code(self) -> char {
        match self {
            PolicyStage::New => 'N',
            PolicyStage::Renewal => 'R',
        }
    }
}

/// `tblPolicy.PolicyStatus`, with openIMIS's numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyStatus {
    Idle = 1,
    Active = 2,
    Suspended = 4,
    Expired = 8,
    Ready = 16,
}

impl PolicyStatus {
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Option<PolicyStatus> {
        Some(match code {
            1 => PolicyStatus::Idle,
            2 => PolicyStatus::Active,
            4 => PolicyStatus::Suspended,
            8 => PolicyStatus::Expired,
            16 => PolicyStatus::Ready,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: Id,
    pub uuid: Uuid,
    pub family: Id,
    pub product: Id,
    pub officer: Option<Id>,
    pub stage: PolicyStage,
    pub status: PolicyStatus,
    /// Contribution due (`PolicyValue`).
    pub value: Money,
    pub enroll_date: NaiveDate,
    pub start_date: NaiveDate,
    /// `None` until (sufficiently) paid.
    pub effective_date: Option<NaiveDate>,
    pub expiry_date: NaiveDate,
    /// Renewed by the member themself (USSD), `tblPolicy.SelfRenewed`.
    pub self_renewed: bool,
}

impl Policy {
    /// A member's coverage row under this policy: the policy's dates, from `enrollment_date`.
    pub fn member_row(&self, id: Id, insuree: Id, enrollment_date: NaiveDate) -> InsureePolicy {
        InsureePolicy {
            id,
            insuree,
            policy: self.id,
            enrollment_date,
            start_date: self.start_date,
            effective_date: self.effective_date,
            expiry_date: self.expiry_date,
        }
    }
}

/// Per-member coverage under a policy (`tblInsureePolicy`). Coverage status is read from
/// these dates, not the policy's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsureePolicy {
    pub id: Id,
    pub insuree: Id,
    pub policy: Id,
    pub enrollment_date: NaiveDate,
    pub start_date: NaiveDate,
    pub effective_date: Option<NaiveDate>,
    pub expiry_date: NaiveDate,
}

/// `tblPremium.PayType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayType {
    Bank,
    Cash,
    Mobile,
    Funding,
}

impl PayType {
    pub fn code(self) -> char {
        match self {
            PayType::Bank => 'B',
            PayType::Cash => 'C',
            PayType::Mobile => 'M',
            PayType::Funding => 'F',
        }
    }
}

/// A contribution paid against a policy (`tblPremium`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Premium {
    pub id: Id,
    pub uuid: Uuid,
    pub policy: Id,
    pub amount: Money,
    pub receipt: String,
    pub pay_date: NaiveDate,
    pub pay_type: PayType,
    /// Photo-fee premiums do not count toward the policy value.
    pub is_photo_fee: bool,
}

/// `tblPayment.PaymentStatus`, with the stored-procedure semantics (not the C# names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// −1: the intent failed validation.
    Rejected,
    /// 0: intent created.
    IntentCreated,
    /// 1: control number requested.
    ControlNumberRequested,
    /// 2: GePG acknowledged the request.
    Posted,
    /// 3: control number assigned.
    Assigned,
    /// 4: payment received, not yet matched.
    Received,
    /// 5: matched to premiums.
    Matched,
    /// −3: rejected at receipt (wrong control number, amount, or a duplicate).
    RejectedAtReceipt,
}

impl PaymentStatus {
    pub fn code(self) -> i32 {
        match self {
            PaymentStatus::Rejected => -1,
            PaymentStatus::IntentCreated => 0,
            PaymentStatus::ControlNumberRequested => 1,
            PaymentStatus::Posted => 2,
            PaymentStatus::Assigned => 3,
            PaymentStatus::Received => 4,
            PaymentStatus::Matched => 5,
            PaymentStatus::RejectedAtReceipt => -3,
        }
    }

    pub fn from_code(code: i32) -> Option<PaymentStatus> {
        Some(match code {
            -1 => PaymentStatus::Rejected,
            0 => PaymentStatus::IntentCreated,
            1 => PaymentStatus::ControlNumberRequested,
            2 => PaymentStatus::Posted,
            3 => PaymentStatus::Assigned,
            4 => PaymentStatus::Received,
            5 => PaymentStatus::Matched,
            -3 => PaymentStatus::RejectedAtReceipt,
            _ => return None,
        })
    }
}

/// One line of a payment (`tblPaymentDetails`): which member's policy of which product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDetail {
    pub product_code: String,
    pub chfid: Chfid,
    pub stage: PolicyStage,
    /// The policy this line pays for, once known.
    pub policy: Option<Id>,
    pub expected_amount: Money,
    /// Amount allocated at matching.
    pub amount: Option<Money>,
    pub premium: Option<Id>,
}

/// A payment intent and, once paid, the payment (`tblPayment`). Its id is the GePG BillId.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: Id,
    pub uuid: Uuid,
    pub status: PaymentStatus,
    pub expected_amount: Money,
    pub received_amount: Option<Money>,
    /// `None` for a self-payer.
    pub officer_code: Option<String>,
    /// The requester's phone, for SMS.
    pub phone: Option<Msisdn>,
    pub language: Language,
    pub request_date: DateTime<Utc>,
    pub control_number: Option<String>,
    pub received_date: Option<DateTime<Utc>>,
    pub payment_date: Option<DateTime<Utc>>,
    pub matched_date: Option<DateTime<Utc>>,
    /// PSP / GePG `TrxId`.
    pub transaction_no: Option<String>,
    pub receipt_no: Option<String>,
    pub payment_origin: Option<String>,
    pub rejected_reason: Option<String>,
    pub details: Vec<PaymentDetail>,
}

impl Payment {
    /// A new payment intent (`IntentCreated`) for one contribution line: no control number,
    /// no money yet. USSD renewals, officer commands and demo data all start a payment here;
    /// callers set what differs (officer, status, control number) on the result.
    pub fn intent(
        id: Id,
        uuid: Uuid,
        line: PaymentDetail,
        phone: Option<Msisdn>,
        language: Language,
        request_date: DateTime<Utc>,
    ) -> Payment {
        Payment {
            id,
            uuid,
            status: PaymentStatus::IntentCreated,
            expected_amount: line.expected_amount,
            received_amount: None,
            officer_code: None,
            phone,
            language,
            request_date,
            control_number: None,
            received_date: None,
            payment_date: None,
            matched_date: None,
            transaction_no: None,
            receipt_no: None,
            payment_origin: None,
            rejected_reason: None,
            details: vec![line],
        }
    }
}

/// `tblControlNumber.Status` as this gateway tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlNumberStatus {
    /// Requested from GePG, not yet received.
    Requested,
    /// Received and free in the pool of a product.
    Pooled,
    /// Assigned to a payment.
    Assigned,
    /// Cancelled at GePG.
    Cancelled,
}

/// A GePG control number (`tblControlNumber`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlNumber {
    pub id: Id,
    pub number: String,
    pub status: ControlNumberStatus,
    pub payment: Option<Id>,
    /// For pool numbers, the product they were requested for.
    pub product: Option<Id>,
    pub requested_date: DateTime<Utc>,
    pub received_date: Option<DateTime<Utc>>,
}
