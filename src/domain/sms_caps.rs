//! `[sms_guard]`: how many SMS the gateway may send to phones it does not know (neither an
//! officer's nor a family's), as data. The configuration reads it here, below every module
//! that uses it; `sms::cost_guard` applies it.
//! Must never: hold state or count anything (the guard does).

use serde::{Deserialize, Serialize};

/// `[sms_guard]`. A value of 0 turns that cap off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostGuardSettings {
    /// SMS to unknown phones, all together, per hour.
    pub unknown_per_hour: u32,
    /// SMS to unknown phones, all together, per day.
    pub unknown_per_day: u32,
    /// SMS to any one unknown phone, per day.
    pub per_destination_per_day: u32,
}

impl Default for CostGuardSettings {
    fn default() -> CostGuardSettings {
        CostGuardSettings {
            unknown_per_hour: 100,
            unknown_per_day: 500,
            per_destination_per_day: 3,
        }
    }
}
