//! `tblControlNumber` ← [`ControlNumber`]. No UUID: a row is found by its number. Not
//! pulled (a payment's current control number comes with the payment).

use super::prelude::*;
use crate::domain::{ControlNumber, ControlNumberStatus};

const NUMBER: Col = Col::new("ControlNumber", Ty::Text);
const STATUS: Col = Col::new("Status", Ty::I32);
const PAYMENT: Col = Col::new("PaymentID", Ty::I64);
const REQUESTED_DATE: Col = Col::new("RequestedDate", Ty::Ts);
const RECEIVED_DATE: Col = Col::new("ReceivedDate", Ty::Ts);

pub const DESC: Desc = Desc {
    kind: "control_number",
    table: Table {
        name: "tblControlNumber",
        pk: "ControlNumberID",
        uuid: None,
        uuid_is_uuid_type: false,
        audit: "AuditedUserID",
        seq: "tblControlNumber_ControlNumberID_seq",
        columns: &[NUMBER, STATUS, PAYMENT, REQUESTED_DATE, RECEIVED_DATE],
        unmapped: &["RequestOrigin", "ResponseOrigin", "IssuedDate", "Comment"],
    },
    natural_key: &[NUMBER],
    pull: None,
};

/// `tblControlNumber.Status`: openIMIS only ever writes 0 (requested); the gateway's pool
/// states follow it in the order they happen.
pub fn status_code(s: ControlNumberStatus) -> i32 {
    match s {
        ControlNumberStatus::Requested => 0,
        ControlNumberStatus::Pooled => 1,
        ControlNumberStatus::Assigned => 2,
        ControlNumberStatus::Cancelled => 3,
    }
}

impl Mapped for ControlNumber {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        self.payment.map(|p| ("payment", p)).into_iter().collect()
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            NUMBER.text(Some(self.number.clone())),
            STATUS.int(Some(i64::from(status_code(self.status)))),
            PAYMENT.int(refs.opt(self.payment.map(|p| ("payment", p)))?),
            REQUESTED_DATE.ts(Some(self.requested_date)),
            RECEIVED_DATE.ts(self.received_date),
        ])
    }

    fn read(_: &Named<'_>, _: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        Ok(None)
    }
}
