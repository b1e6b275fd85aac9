//! The one internal hop event every gateway adapter produces, and the reply it gets.
//!
//! Owns: the wire-free shape of a USSD hop (`new | continue | end | abort`) and of a reply
//! (`text`, `end`). Adapters (HTTP forms, JSON, SMPP `ussd_service_op`) convert to and from it.
//! Must never: carry a wire format (no `CON `/`END ` prefixes, no PDU fields).

use serde::{Deserialize, Serialize};

use crate::domain::Msisdn;

/// What happened on the gateway side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HopKind {
    /// The member dialled: a new session. `input` may hold dial-string inputs joined by `*`
    /// (`*152*00*1*070707070#` → `1*070707070`), applied in order.
    New,
    /// The member answered the last screen.
    Continue,
    /// The gateway reports the session closed (by the member or the network).
    End,
    /// The gateway aborted the session (timer expiry, network error).
    Abort,
}

/// One hop, as the engine sees it.
#[derive(Debug, Clone)]
pub struct HopEvent {
    /// Adapter name (`africastalking`, `json`, `smpp`, `simulator`): keys metrics, budgets
    /// and sessions (two gateways may reuse a session id).
    pub gateway: String,
    pub session_id: String,
    pub msisdn: Msisdn,
    pub service_code: String,
    /// Position of this hop in the session (0 = the dial). `None` = the next one: the
    /// gateway gives no sequence, so duplicates cannot be told apart.
    pub hop_index: Option<u32>,
    pub input: String,
    pub kind: HopKind,
}

/// What the member sees; `end` closes the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    pub end: bool,
}

impl Reply {
    pub fn con(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            end: false,
        }
    }

    pub fn end(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            end: true,
        }
    }
}
