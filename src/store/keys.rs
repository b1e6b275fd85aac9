//! Key layouts: which trees exist and how their keys are built.
//!
//! Every integer in a key is big-endian so that sled's byte order is numeric order:
//! iterating a record tree yields ids ascending, and a composite key `a || b` groups all
//! `b`s of one `a` together, ascending.
//!
//! | tree                          | key                               | value            |
//! |-------------------------------|-----------------------------------|------------------|
//! | record trees (`families`, …)  | id (u64 BE)                       | versioned record |
//! | `idx_chfid`                   | CHFID text, as stored             | insuree id       |
//! | `idx_family_members`          | family id ‖ insuree id            | empty            |
//! | `idx_family_policies`         | family id ‖ policy id             | empty            |
//! | `idx_policy_insuree_policies` | policy id ‖ insuree-policy id     | empty            |
//! | `idx_policy_premiums`         | policy id ‖ premium id            | empty            |
//! | `idx_officer_phone`           | MSISDN                            | officer id       |
//! | `idx_family_phone`            | head's MSISDN ‖ 0x00 ‖ family id  | empty            |
//! | `idx_payment_control_number`  | control number                    | payment id       |
//! | `idx_chfid_payments`          | len (u8) ‖ CHFID ‖ payment id     | empty            |
//! | `idx_control_number`          | control number                    | control-number id|
//! | `idx_{product,officer,location}_code` | code, trimmed, ASCII upper | record id        |
//! | `outbox`, `outbox_dead`       | topic prefix ‖ seq (u64 BE)       | versioned entry  |
//! | `outbox_keys`                 | topic prefix ‖ idempotency key    | versioned marker |
//! | `aux`                         | namespace prefix ‖ owner's key    | owner's bytes    |
//!
//! A topic prefix is `len (u8) ‖ topic bytes`, so no topic's keys are a prefix of another's;
//! a CHFID prefix of the payments index is built the same way (`12` never matches `123`).
//! Codes are matched case-insensitively, as openIMIS's SQL Server collation matches them.

use crate::domain::{Chfid, Id, Msisdn};

use super::StoreError;

/// Every tree of the store. The discriminant is the tree's position in a transaction's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeId {
    Meta,
    Locations,
    Products,
    Officers,
    Families,
    Insurees,
    Policies,
    InsureePolicies,
    Premiums,
    Payments,
    ControlNumbers,
    IdxChfid,
    IdxFamilyMembers,
    IdxFamilyPolicies,
    IdxPolicyInsureePolicies,
    IdxPolicyPremiums,
    IdxOfficerPhone,
    IdxFamilyPhone,
    IdxPaymentControlNumber,
    IdxChfidPayments,
    IdxControlNumber,
    IdxProductCode,
    IdxOfficerCode,
    IdxLocationCode,
    Outbox,
    OutboxKeys,
    OutboxDead,
    Aux,
}

impl TreeId {
    pub(crate) const ALL: [TreeId; 28] = [
        TreeId::Meta,
        TreeId::Locations,
        TreeId::Products,
        TreeId::Officers,
        TreeId::Families,
        TreeId::Insurees,
        TreeId::Policies,
        TreeId::InsureePolicies,
        TreeId::Premiums,
        TreeId::Payments,
        TreeId::ControlNumbers,
        TreeId::IdxChfid,
        TreeId::IdxFamilyMembers,
        TreeId::IdxFamilyPolicies,
        TreeId::IdxPolicyInsureePolicies,
        TreeId::IdxPolicyPremiums,
        TreeId::IdxOfficerPhone,
        TreeId::IdxFamilyPhone,
        TreeId::IdxPaymentControlNumber,
        TreeId::IdxChfidPayments,
        TreeId::IdxControlNumber,
        TreeId::IdxProductCode,
        TreeId::IdxOfficerCode,
        TreeId::IdxLocationCode,
        TreeId::Outbox,
        TreeId::OutboxKeys,
        TreeId::OutboxDead,
        TreeId::Aux,
    ];

    /// Position in [`TreeId::ALL`] (and in every transaction view).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The sled tree name. Never rename one: it is the on-disk identity.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TreeId::Meta => "meta",
            TreeId::Locations => "locations",
            TreeId::Products => "products",
            TreeId::Officers => "officers",
            TreeId::Families => "families",
            TreeId::Insurees => "insurees",
            TreeId::Policies => "policies",
            TreeId::InsureePolicies => "insuree_policies",
            TreeId::Premiums => "premiums",
            TreeId::Payments => "payments",
            TreeId::ControlNumbers => "control_numbers",
            TreeId::IdxChfid => "idx_chfid",
            TreeId::IdxFamilyMembers => "idx_family_members",
            TreeId::IdxFamilyPolicies => "idx_family_policies",
            TreeId::IdxPolicyInsureePolicies => "idx_policy_insuree_policies",
            TreeId::IdxPolicyPremiums => "idx_policy_premiums",
            TreeId::IdxOfficerPhone => "idx_officer_phone",
            TreeId::IdxFamilyPhone => "idx_family_phone",
            TreeId::IdxPaymentControlNumber => "idx_payment_control_number",
            TreeId::IdxChfidPayments => "idx_chfid_payments",
            TreeId::IdxControlNumber => "idx_control_number",
            TreeId::IdxProductCode => "idx_product_code",
            TreeId::IdxOfficerCode => "idx_officer_code",
            TreeId::IdxLocationCode => "idx_location_code",
            TreeId::Outbox => "outbox",
            TreeId::OutboxKeys => "outbox_keys",
            TreeId::OutboxDead => "outbox_dead",
            TreeId::Aux => "aux",
        }
    }
}

/// Key of a record in its tree.
pub(crate) fn id_key(id: Id) -> [u8; 8] {
    id.to_be_bytes()
}

/// Composite key `a ‖ b` for one-to-many indexes.
pub(crate) fn pair_key(a: Id, b: Id) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

/// The id in the last 8 bytes of a key (a record key, or the `b` of a composite key).
pub(crate) fn trailing_id(key: &[u8], tree: TreeId) -> Result<Id, StoreError> {
    key.len()
        .checked_sub(8)
        .and_then(|start| key[start..].try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(StoreError::CorruptKey { tree: tree.name() })
}

/// An id stored as the value of a unique index.
pub(crate) fn id_value(bytes: &[u8], tree: TreeId) -> Result<Id, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::CorruptKey { tree: tree.name() })
}

/// A CHFID's unique-index key: its text as stored (a CHFID is central text, not a number).
pub(crate) fn chfid_key(chfid: &Chfid) -> &[u8] {
    chfid.as_str().as_bytes()
}

/// `len (u8) ‖ CHFID`: the prefix of every payments-index key of one CHFID. The length
/// keeps `12` from matching the keys of `123`.
pub(crate) fn chfid_prefix(chfid: &Chfid) -> Vec<u8> {
    let text = chfid_key(chfid);
    let mut k = Vec::with_capacity(1 + text.len() + 8);
    // A CHFID is at most domain::chfid::MAX_LEN (50) bytes, so its length fits a u8.
    k.push(text.len() as u8);
    k.extend_from_slice(text);
    k
}

/// `len ‖ CHFID ‖ payment id`: a payment under each CHFID its lines name (the family's
/// payments are those under its members' CHFIDs).
pub(crate) fn chfid_payment_key(chfid: &Chfid, payment: Id) -> Vec<u8> {
    let mut k = chfid_prefix(chfid);
    k.extend_from_slice(&payment.to_be_bytes());
    k
}

pub(crate) fn phone_key(phone: &Msisdn) -> &[u8] {
    phone.as_str().as_bytes()
}

/// `phone ‖ 0x00`: the prefix of every family-phone key of one phone. The separator keeps
/// `255712345678` from matching `2557123456789`.
pub(crate) fn phone_prefix(phone: &Msisdn) -> Vec<u8> {
    let mut k = Vec::with_capacity(phone.as_str().len() + 9);
    k.extend_from_slice(phone_key(phone));
    k.push(0);
    k
}

pub(crate) fn phone_family_key(phone: &Msisdn, family: Id) -> Vec<u8> {
    let mut k = phone_prefix(phone);
    k.extend_from_slice(&family.to_be_bytes());
    k
}

/// Index key of a product, officer or location code: trimmed and ASCII-uppercased.
/// `None` for a blank code, which is not indexed.
pub(crate) fn code_key(code: &str) -> Option<Vec<u8>> {
    let t = code.trim();
    (!t.is_empty()).then(|| t.to_ascii_uppercase().into_bytes())
}

/// Index key of a control number (exact digits, trimmed); `None` when blank.
pub(crate) fn control_number_key(number: &str) -> Option<Vec<u8>> {
    let t = number.trim();
    (!t.is_empty()).then(|| t.as_bytes().to_vec())
}

/// Longest accepted outbox topic, in bytes.
pub const MAX_TOPIC_LEN: usize = 64;
/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 512;

/// `len ‖ topic`: the prefix of every outbox key of one topic.
pub(crate) fn topic_prefix(topic: &str) -> Result<Vec<u8>, StoreError> {
    let len = topic.len();
    if len == 0 || len > MAX_TOPIC_LEN {
        return Err(StoreError::InvalidTopic(topic.chars().take(80).collect()));
    }
    let mut k = Vec::with_capacity(1 + len + 8);
    k.push(len as u8);
    k.extend_from_slice(topic.as_bytes());
    Ok(k)
}

pub(crate) fn outbox_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn marker_key(prefix: &[u8], idempotency_key: &str) -> Result<Vec<u8>, StoreError> {
    if idempotency_key.is_empty() || idempotency_key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(StoreError::InvalidIdempotencyKey {
            len: idempotency_key.len(),
        });
    }
    let mut k = Vec::with_capacity(prefix.len() + idempotency_key.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(idempotency_key.as_bytes());
    Ok(k)
}

/// Key in the `aux` tree: `len (u8) ‖ namespace ‖ key`, so no namespace's keys are a prefix of
/// another's.
pub(crate) fn aux_key(namespace: &str, key: &[u8]) -> Result<Vec<u8>, StoreError> {
    let ns = namespace.as_bytes();
    if ns.is_empty() || ns.len() > usize::from(u8::MAX) {
        return Err(StoreError::InvalidTopic(namespace.to_string()));
    }
    let mut k = Vec::with_capacity(1 + ns.len() + key.len());
    k.push(ns.len() as u8);
    k.extend_from_slice(ns);
    k.extend_from_slice(key);
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_positions_match_the_list() {
        for (i, t) in TreeId::ALL.iter().enumerate() {
            assert_eq!(t.index(), i, "{}", t.name());
        }
        let mut names: Vec<_> = TreeId::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TreeId::ALL.len(), "tree names are unique");
    }

    #[test]
    fn big_endian_keys_sort_numerically() {
        assert!(id_key(255) < id_key(256));
        assert!(pair_key(1, u64::MAX) < pair_key(2, 0));
        assert_eq!(
            trailing_id(&pair_key(7, 42), TreeId::IdxFamilyMembers).ok(),
            Some(42)
        );
        assert!(trailing_id(&[1, 2, 3], TreeId::IdxFamilyMembers).is_err());
        assert!(id_value(&[0; 7], TreeId::IdxChfid).is_err());
    }

    #[test]
    fn chfid_keys_are_the_text_and_payment_prefixes_do_not_overlap() {
        let c = |s| Chfid::from_central(s).unwrap();
        assert_eq!(chfid_key(&c("07070707")), b"07070707");
        assert_ne!(chfid_key(&c("12")), chfid_key(&c("012")));
        let short = chfid_prefix(&c("12"));
        assert!(!chfid_payment_key(&c("123"), 1).starts_with(&short));
        assert!(chfid_payment_key(&c("12"), 1).starts_with(&short));
        assert_eq!(
            trailing_id(&chfid_payment_key(&c("12"), 42), TreeId::IdxChfidPayments).ok(),
            Some(42)
        );
    }

    #[test]
    fn phone_prefixes_do_not_overlap() {
        let a = Msisdn::parse("255712345678").unwrap();
        let b = Msisdn::parse("2557123456789").unwrap();
        assert!(!phone_family_key(&b, 1).starts_with(&phone_prefix(&a)));
        assert!(phone_family_key(&a, 1).starts_with(&phone_prefix(&a)));
    }

    #[test]
    fn topic_prefixes_do_not_overlap_and_are_validated() {
        let a = topic_prefix("sms").unwrap();
        let b = topic_prefix("sms2").unwrap();
        assert!(!outbox_key(&b, 1).starts_with(&a));
        assert!(topic_prefix("").is_err());
        assert!(topic_prefix(&"x".repeat(MAX_TOPIC_LEN + 1)).is_err());
        assert!(marker_key(&a, "").is_err());
        assert!(marker_key(&a, &"k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn codes_match_case_insensitively_and_blanks_are_not_indexed() {
        assert_eq!(code_key(" chf1 "), code_key("CHF1"));
        assert_eq!(code_key("  "), None);
        assert_eq!(
            control_number_key(" 991234 ").as_deref(),
            Some(&b"991234"[..])
        );
    }
}
