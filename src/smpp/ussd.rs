//! USSD over SMPP: deliver_sm / data_sm carrying `ussd_service_op` become hop events for
//! the session engine ([`crate::ussd`]); its reply goes back as a submit_sm with op
//! "continue" (USSR request, 2) or "end" (PSSR response, 17), echoing its_session_info.
//!
//! Owns: the op mapping (vendor values configurable), the session key (MSISDN plus the
//! operator's its_session_info session number) and the reply PDU.
//! Must never: put a USSD reply on the durable SMS outbox (a USSD screen is worthless once
//! the session timed out), or let the engine see a PDU field.

use chrono::Utc;
use tracing::Instrument;

use super::pdu::{status, DeliverMsg, SubmitReq};
use super::{Job, Shared, SubmitOutcome};
use crate::domain::Msisdn;
use crate::sms::segment;
use crate::ussd::event::{HopEvent, HopKind, Reply};

/// ussd_service_op values, per operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdOps {
    /// Subscriber dialled (PSSR indication).
    pub begin: u8,
    /// Subscriber answered a menu (USSR confirm).
    pub answer: u8,
    /// Subscriber or network closed the session (0 = the operator has none).
    pub release: u8,
    /// Our reply that keeps the session open (USSR request).
    pub reply_continue: u8,
    /// Our reply that ends it (PSSR response).
    pub reply_end: u8,
}

impl Default for UssdOps {
    fn default() -> UssdOps {
        UssdOps {
            begin: 1,
            answer: 18,
            release: 0,
            reply_continue: 2,
            reply_end: 17,
        }
    }
}

/// The hop a USSD PDU stands for, or `None` for an op we do not handle.
pub fn to_hop(msg: &DeliverMsg, ops: &UssdOps, service_code: &str) -> Option<HopEvent> {
    let op = msg.ussd_service_op?;
    let msisdn = Msisdn::parse(&msg.source).ok()?;
    let text = String::from_utf8_lossy(&msg.payload).trim().to_string();
    let (kind, input) = if op == ops.begin {
        (HopKind::New, dial_inputs(&text, service_code))
    } else if op == ops.answer {
        (HopKind::Continue, text)
    } else if ops.release != 0 && op == ops.release {
        (HopKind::End, String::new())
    } else {
        return None;
    };
    let session_id = match msg.its_session_info {
        Some([n, _]) => format!("{}:{n}", msisdn.as_str()),
        None => msisdn.as_str().to_string(),
    };
    Some(HopEvent {
        gateway: "smpp".into(),
        session_id,
        msisdn,
        service_code: service_code.to_string(),
        hop_index: None,
        input,
        kind,
    })
}

/// What was dialled after the service code: `*152*00*1*5#` with code `*152*00#` → `1*5`.
pub fn dial_inputs(dialled: &str, service_code: &str) -> String {
    let base = service_code.trim_end_matches('#');
    let d = dialled.trim().trim_end_matches('#');
    match d.strip_prefix(base) {
        Some(rest) => rest.trim_start_matches('*').to_string(),
        None => String::new(),
    }
}

/// The submit_sm that carries `reply` back.
pub fn reply_pdu(msg: &DeliverMsg, reply: &Reply, ops: &UssdOps) -> Option<SubmitReq> {
    let enc = segment::encode(&reply.text, 0).ok()?;
    // A USSD screen is one message; the engine keeps it within one segment's size.
    let payload = enc.parts.into_iter().next()?;
    let its = msg.its_session_info.map(|[n, s]| {
        // Bit 0 of the second octet marks the end of the session.
        [n, if reply.end { s | 1 } else { s & !1 }]
    });
    Some(SubmitReq {
        source: msg.dest.clone(),
        dest: msg.source.clone(),
        data_coding: enc.data_coding,
        esm_class: 0,
        payload: if enc.udhi {
            payload[6..].to_vec()
        } else {
            payload
        },
        registered_delivery: false,
        validity: None,
        ussd_service_op: Some(if reply.end {
            ops.reply_end
        } else {
            ops.reply_continue
        }),
        its_session_info: its,
    })
}

/// Handles a USSD PDU: answer it at once, reply through the engine in the background.
pub(crate) async fn on_hop(shared: &Shared, msg: &DeliverMsg) -> u32 {
    let s = &shared.settings;
    let Some(engine) = shared.ussd.clone() else {
        tracing::warn!("USSD over SMPP received but no USSD engine is running");
        return status::RX_P_APPN;
    };
    let Some(hop) = to_hop(msg, &s.ussd_ops, &s.service_code) else {
        tracing::debug!(op = ?msg.ussd_service_op, "USSD op not handled; acknowledged");
        return status::OK;
    };
    let span =
        tracing::info_span!("ussd_smpp", msisdn = %hop.msisdn.masked(), session = %hop.session_id);
    async move {
        let end_only = hop.kind == HopKind::End;
        let reply = engine.handle(hop).await;
        if end_only {
            return status::OK;
        }
        let Some(req) = reply_pdu(msg, &reply, &s.ussd_ops) else {
            return status::OK;
        };
        let jobs = shared.jobs_tx.clone();
        tokio::spawn(async move {
            // Requeued once if a bind drops; after that the session is lost anyway.
            for _ in 0..2 {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let job = Job {
                    req: req.clone(),
                    reply: tx,
                };
                if jobs.send(job).await.is_err() {
                    return;
                }
                match rx.await {
                    Ok(SubmitOutcome::Requeue) | Err(_) => continue,
                    Ok(other) => {
                        tracing::debug!(outcome = ?other, at = %Utc::now(), "USSD reply submitted");
                        return;
                    }
                }
            }
        });
        status::OK
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(op: u8, text: &str, its: Option<[u8; 2]>) -> DeliverMsg {
        DeliverMsg {
            source: "255754100001".into(),
            dest: "*152*00#".into(),
            payload: text.as_bytes().to_vec(),
            ussd_service_op: Some(op),
            its_session_info: its,
            ..DeliverMsg::default()
        }
    }

    #[test]
    fn ops_map_to_hops_and_sessions_follow_its_session_info() {
        let ops = UssdOps::default();
        let h = to_hop(&msg(1, "*152*00*1#", Some([7, 0])), &ops, "*152*00#").unwrap();
        assert_eq!((h.kind, h.input.as_str()), (HopKind::New, "1"));
        assert_eq!(h.session_id, "255754100001:7");
        let h = to_hop(&msg(18, "2", None), &ops, "*152*00#").unwrap();
        assert_eq!(
            (h.kind, h.input.as_str(), h.session_id.as_str()),
            (HopKind::Continue, "2", "255754100001")
        );
        assert!(to_hop(&msg(99, "x", None), &ops, "*152*00#").is_none());
        let vendor = UssdOps {
            release: 128,
            ..UssdOps::default()
        };
        assert_eq!(
            to_hop(&msg(128, "", None), &vendor, "*152*00#")
                .unwrap()
                .kind,
            HopKind::End
        );
        assert_eq!(dial_inputs("*152*00#", "*152*00#"), "");
        assert_eq!(dial_inputs("*999#", "*152*00#"), "");
    }

    #[test]
    fn replies_continue_or_end_and_echo_the_session() {
        let ops = UssdOps::default();
        let m = msg(1, "*152*00#", Some([7, 2]));
        let r = reply_pdu(&m, &Reply::con("1. Bima"), &ops).unwrap();
        assert_eq!(
            (r.ussd_service_op, r.its_session_info),
            (Some(2), Some([7, 2]))
        );
        assert_eq!((r.dest.as_str(), r.esm_class), ("255754100001", 0));
        let r = reply_pdu(&m, &Reply::end("Asante"), &ops).unwrap();
        assert_eq!(
            (r.ussd_service_op, r.its_session_info),
            (Some(17), Some([7, 3]))
        );
    }
}
