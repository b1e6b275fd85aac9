//! Who may see a family's details on a channel that authenticates nobody (USSD: the msisdn
//! is whatever the gateway says, and a CHFID is printed on a card anyone may have seen).
//!
//! Owns: the `[privacy]` settings and the rule that decides, per caller, whether names and
//! control numbers may be shown. Must never: read the store or a wire; callers pass the
//! family's members in.

use serde::{Deserialize, Serialize};

use super::Msisdn;

/// To whom a kind of family detail is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownTo {
    /// Only to a phone linked to the family (the head's or a member's phone on file).
    #[default]
    Linked,
    /// To any caller who knows a member's CHFID (the behaviour before issue 14).
    Anyone,
}

impl ShownTo {
    /// Whether a caller whose phone is (or is not) linked to the family may see it.
    pub fn allows(self, linked: bool) -> bool {
        linked || self == ShownTo::Anyone
    }
}

/// `[privacy]`: what a USSD caller who is not linked to a family may learn about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// Members' names (first name and initial) on "check coverage" by CHFID.
    pub names_to: ShownTo,
    /// Pending control numbers on "my control number" by CHFID.
    pub control_numbers_to: ShownTo,
}

/// Whether `phone` is linked to a family whose members have `phones` on file (the head's
/// and any member's phone as the store knows them).
pub fn phone_linked<'a>(phone: &Msisdn, phones: impl IntoIterator<Item = &'a Msisdn>) -> bool {
    phones.into_iter().any(|p| p == phone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_linked_phone_sees_what_linked_settings_hide() {
        // Default: linked only.
        let p = Privacy::default();
        assert!(p.names_to.allows(true));
        assert!(!p.names_to.allows(false));
        assert!(!p.control_numbers_to.allows(false));
        // "anyone" restores the old behaviour.
        assert!(ShownTo::Anyone.allows(false));
        let parsed: Privacy = toml::from_str("names_to = \"anyone\"").unwrap();
        assert_eq!(parsed.names_to, ShownTo::Anyone);
        assert_eq!(parsed.control_numbers_to, ShownTo::Linked);
    }

    #[test]
    fn a_phone_is_linked_through_any_member() {
        let head = Msisdn::parse("255754100001").unwrap();
        let child = Msisdn::parse("255754100002").unwrap();
        let other = Msisdn::parse("255754999999").unwrap();
        // The head's phone and a child's; a third member has none on file.
        let family = [Some(head.clone()), Some(child.clone()), None];
        let phones = || family.iter().flatten();
        assert!(phone_linked(&head, phones()));
        assert!(phone_linked(&child, phones()));
        assert!(!phone_linked(&other, phones()));
        assert!(!phone_linked(&head, []));
    }
}
