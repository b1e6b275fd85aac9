//! The one place `tests/sms_replies.rs` and `tests/sms_cost_guard.rs` post an MO over
//! `POST /sms/inbound`: the route's authentication, when it has one, goes here.

use serde_json::json;

use crate::common::Server;

/// Posts one MO from `from` with aggregator id `id`; the gateway must take it (200).
pub fn post_inbound(server: &Server, from: &str, text: &str, id: &str) {
    let mo = json!({"from": from, "to": "15200", "text": text, "id": id});
    let (code, resp) =
        crate::common::sms::inbound_raw(server.addr.port(), "application/json", &mo.to_string());
    assert_eq!(code, 200, "{resp}");
}
