//! The store's typed reads outside transactions: by id, by unique index, and prefix scans.
//!
//! Owns: nothing of its own; every read goes through the trees and codecs of [`super::tx`].
//! Must never: write (writes are transactions, `super::tx`).

use super::keys::{self, TreeId};
use super::tx::{self, get_record, get_unique, Record};
use super::{Store, StoreError};
use crate::domain::{
    Chfid, ControlNumber, Family, Id, Insuree, InsureePolicy, Location, Msisdn, Officer, Payment,
    Policy, Premium, Product,
};

macro_rules! read_by_id {
    ($($get:ident: $ty:ty),* $(,)?) => {
        $(
            pub fn $get(&self, id: Id) -> Result<Option<$ty>, StoreError> {
                get_record(self, id)
            }
        )*
    };
}

/// Reads outside transactions. Each is a consistent read of one key, or a prefix scan.
impl Store {
    read_by_id!(
        location: Location,
        product: Product,
        officer: Officer,
        family: Family,
        insuree: Insuree,
        policy: Policy,
        insuree_policy: InsureePolicy,
        premium: Premium,
        payment: Payment,
        control_number: ControlNumber,
    );

    /// The USSD hot path: two point reads and one decode.
    pub fn insuree_by_chfid(&self, chfid: Chfid) -> Result<Option<Insuree>, StoreError> {
        get_unique(self, TreeId::IdxChfid, keys::chfid_key(&chfid))
    }

    pub fn chfid_taken(&self, chfid: Chfid) -> Result<bool, StoreError> {
        Ok(self
            .tree(TreeId::IdxChfid)
            .contains_key(keys::chfid_key(&chfid))?)
    }

    pub fn officer_by_phone(&self, phone: &Msisdn) -> Result<Option<Officer>, StoreError> {
        get_unique(self, TreeId::IdxOfficerPhone, keys::phone_key(phone))
    }

    pub fn officer_by_code(&self, code: &str) -> Result<Option<Officer>, StoreError> {
        self.by_code(TreeId::IdxOfficerCode, code)
    }

    pub fn product_by_code(&self, code: &str) -> Result<Option<Product>, StoreError> {
        self.by_code(TreeId::IdxProductCode, code)
    }

    pub fn location_by_code(&self, code: &str) -> Result<Option<Location>, StoreError> {
        self.by_code(TreeId::IdxLocationCode, code)
    }

    pub fn payment_by_control_number(&self, number: &str) -> Result<Option<Payment>, StoreError> {
        match keys::control_number_key(number) {
            Some(k) => get_unique(self, TreeId::IdxPaymentControlNumber, &k),
            None => Ok(None),
        }
    }

    pub fn control_number_by_number(
        &self,
        number: &str,
    ) -> Result<Option<ControlNumber>, StoreError> {
        match keys::control_number_key(number) {
            Some(k) => get_unique(self, TreeId::IdxControlNumber, &k),
            None => Ok(None),
        }
    }

    /// Families whose head (the member flagged `is_head`) has this phone, by family id.
    pub fn families_by_phone(&self, phone: &Msisdn) -> Result<Vec<Family>, StoreError> {
        self.by_prefix(TreeId::IdxFamilyPhone, &keys::phone_prefix(phone))
    }

    /// Members of a family, by insuree id.
    pub fn family_members(&self, family: Id) -> Result<Vec<Insuree>, StoreError> {
        self.by_prefix(TreeId::IdxFamilyMembers, &keys::id_key(family))
    }

    /// Policies of a family, by policy id (so oldest first).
    pub fn family_policies(&self, family: Id) -> Result<Vec<Policy>, StoreError> {
        self.by_prefix(TreeId::IdxFamilyPolicies, &keys::id_key(family))
    }

    pub fn insuree_policies_of_policy(&self, policy: Id) -> Result<Vec<InsureePolicy>, StoreError> {
        self.by_prefix(TreeId::IdxPolicyInsureePolicies, &keys::id_key(policy))
    }

    pub fn premiums_of_policy(&self, policy: Id) -> Result<Vec<Premium>, StoreError> {
        self.by_prefix(TreeId::IdxPolicyPremiums, &keys::id_key(policy))
    }

    pub fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.all()
    }

    pub fn locations(&self) -> Result<Vec<Location>, StoreError> {
        self.all()
    }

    /// Every payment. Scans the tree: for start-up backfills, not for a request path.
    pub fn payments(&self) -> Result<Vec<Payment>, StoreError> {
        self.all()
    }

    pub fn officers(&self) -> Result<Vec<Officer>, StoreError> {
        self.all()
    }

    /// Streams every record of one kind in id order (for `mirror verify`; not for a request
    /// path). `f` returns `false` to stop early.
    pub(crate) fn for_each_record<R, F>(&self, mut f: F) -> Result<(), StoreError>
    where
        R: Record,
        F: FnMut(R) -> Result<bool, StoreError>,
    {
        for v in self.read(R::TREE)?.iter().values() {
            if !f(tx::decode_in(R::TREE, &v?)?)? {
                break;
            }
        }
        Ok(())
    }

    /// Streams every policy in id order without holding them all in memory: for the
    /// scheduler's daily passes, not for a request path. `f` returns `false` to stop early.
    pub fn for_each_policy<F>(&self, mut f: F) -> Result<(), StoreError>
    where
        F: FnMut(Policy) -> Result<bool, StoreError>,
    {
        for v in self.read(TreeId::Policies)?.iter().values() {
            if !f(tx::decode_in(TreeId::Policies, &v?)?)? {
                break;
            }
        }
        Ok(())
    }

    fn by_code<R: Record>(&self, index: TreeId, code: &str) -> Result<Option<R>, StoreError> {
        match keys::code_key(code) {
            Some(k) => get_unique(self, index, &k),
            None => Ok(None),
        }
    }

    /// Records whose ids end the keys of `index` under `prefix`.
    pub(super) fn by_prefix<R: Record>(
        &self,
        index: TreeId,
        prefix: &[u8],
    ) -> Result<Vec<R>, StoreError> {
        let mut out = Vec::new();
        for kv in self.read(index)?.scan_prefix(prefix) {
            let (k, _) = kv?;
            let id = keys::trailing_id(&k, index)?;
            match get_record(self, id)? {
                Some(r) => out.push(r),
                None => {
                    return Err(StoreError::Dangling {
                        index: index.name(),
                        id,
                    })
                }
            }
        }
        Ok(out)
    }

    fn all<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        self.read(R::TREE)?
            .iter()
            .values()
            .map(|v| tx::decode_in(R::TREE, &v?))
            .collect()
    }
}
