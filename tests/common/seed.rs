//! Store records as tests write them by hand, with the values no test looks at.
#![allow(dead_code)]

use imis_gateway::domain::{Family, Id, Language};

/// A family (not poor) whose head gets SMS, in Kiswahili.
pub fn family(id: Id, head: Id, village: Id) -> Family {
    Family::new(id, head, village, Language::Sw)
}
