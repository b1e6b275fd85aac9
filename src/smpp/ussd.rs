//! USSD over SMPP: deliver_sm / data_sm carrying `ussd_service_op` become hop events for
//! the session engine ([`crate::ussd`]); its reply goes back as a submit_sm with op
//! "continue" (USSR request, 2) or "end" (PSSR response, 17), echoing its_session_info.
//!
//! Owns: the op mapping (vendor values configurable), the session key (MSISDN plus the
//! operator's its_session_info session number), reading the member's input by data_coding
//! (the SMS MO decoder's rules: GSM-7 default alphabet, Latin-1, UCS2), and the reply PDU:
//! one screen in one PDU (up to 182 GSM-7 septets unpacked or 80 UCS2 characters, both
//! within short_message's 254 octets), paginated by the engine exactly as over HTTP.
//! Must never: put a USSD reply on the durable SMS outbox (a USSD screen is worthless once
//! the session timed out), cut a screen as if it were an SMS segment, or let the engine see
//! a PDU field.

use chrono::Utc;
use tracing::Instrument;

use super::pdu::{status, DeliverMsg, SubmitReq};
use super::{Job, Shared, SubmitOutcome};
use crate::domain::Msisdn;
use crate::sms::gsm7;
use crate::sms::mo_text::{self, DefaultAlphabet};
use crate::ussd::event::{HopEvent, HopKind, Reply};

/// data_coding of a reply: the GSM 03.38 default alphabet (unpacked), or UCS2.
const DC_GSM7: u8 = 0x00;
const DC_UCS2: u8 = 0x08;

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

/// The hop a USSD PDU stands for, or `None` for an op we do not handle. The text is
/// decoded by data_coding as an SMS MO is (`alphabet` is what data_coding 0 means here).
pub fn to_hop(
    msg: &DeliverMsg,
    ops: &UssdOps,
    service_code: &str,
    alphabet: DefaultAlphabet,
) -> Option<HopEvent> {
    let op = msg.ussd_service_op?;
    let msisdn = Msisdn::parse(&msg.source).ok()?;
    let text = mo_text::decode(msg.data_coding, &msg.payload, alphabet)
        .trim()
        .to_string();
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

/// One screen as one PDU's text: GSM-7 unpacked septets (data_coding 0) when every
/// character has one, else UCS2 (UTF-16BE, data_coding 8). Never split: the engine already
/// made the screen fit (182 septets / 80 UCS2 units, at most 182 octets).
pub fn encode_screen(text: &str) -> (u8, Vec<u8>) {
    match gsm7::encode(text) {
        Some(septets) => (DC_GSM7, septets),
        None => (
            DC_UCS2,
            text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ),
    }
}

/// The submit_sm that carries `reply` back: the whole screen in one PDU.
pub fn reply_pdu(msg: &DeliverMsg, reply: &Reply, ops: &UssdOps) -> SubmitReq {
    let (data_coding, payload) = encode_screen(&reply.text);
    let its = msg.its_session_info.map(|[n, s]| {
        // Bit 0 of the second octet marks the end of the session.
        [n, if reply.end { s | 1 } else { s & !1 }]
    });
    SubmitReq {
        source: msg.dest.clone(),
        dest: msg.source.clone(),
        data_coding,
        esm_class: 0,
        payload,
        registered_delivery: false,
        validity: None,
        ussd_service_op: Some(if reply.end {
            ops.reply_end
        } else {
            ops.reply_continue
        }),
        its_session_info: its,
    }
}

/// Handles a USSD PDU: answer it at once, reply through the engine in the background.
pub(crate) async fn on_hop(shared: &Shared, msg: &DeliverMsg) -> u32 {
    let s = &shared.settings;
    let Some(engine) = shared.ussd.clone() else {
        tracing::warn!("USSD over SMPP received but no USSD engine is running");
        return status::RX_P_APPN;
    };
    let alphabet = s.reassembly.default_alphabet;
    let Some(hop) = to_hop(msg, &s.ussd_ops, &s.service_code, alphabet) else {
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
        let req = reply_pdu(msg, &reply, &s.ussd_ops);
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

    const GSM: DefaultAlphabet = DefaultAlphabet::Gsm7;

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
        let h = to_hop(&msg(1, "*152*00*1#", Some([7, 0])), &ops, "*152*00#", GSM).unwrap();
        assert_eq!((h.kind, h.input.as_str()), (HopKind::New, "1"));
        assert_eq!(h.session_id, "255754100001:7");
        let h = to_hop(&msg(18, "2", None), &ops, "*152*00#", GSM).unwrap();
        assert_eq!(
            (h.kind, h.input.as_str(), h.session_id.as_str()),
            (HopKind::Continue, "2", "255754100001")
        );
        assert!(to_hop(&msg(99, "x", None), &ops, "*152*00#", GSM).is_none());
        let vendor = UssdOps {
            release: 128,
            ..UssdOps::default()
        };
        assert_eq!(
            to_hop(&msg(128, "", None), &vendor, "*152*00#", GSM)
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
        let r = reply_pdu(&m, &Reply::con("1. Bima"), &ops);
        assert_eq!(
            (r.ussd_service_op, r.its_session_info),
            (Some(2), Some([7, 2]))
        );
        assert_eq!((r.dest.as_str(), r.esm_class), ("255754100001", 0));
        let r = reply_pdu(&m, &Reply::end("Asante"), &ops);
        assert_eq!(
            (r.ussd_service_op, r.its_session_info),
            (Some(17), Some([7, 3]))
        );
    }

    #[test]
    fn input_is_decoded_by_data_coding_as_sms_mo_is() {
        let ops = UssdOps::default();
        let coded = |dc: u8, bytes: &[u8]| DeliverMsg {
            data_coding: dc,
            payload: bytes.to_vec(),
            ..msg(18, "", None)
        };
        // UCS2 "1" (0x0031): "1", not a NUL and a "1".
        let h = to_hop(&coded(8, &[0x00, 0x31]), &ops, "*152*00#", GSM).unwrap();
        assert_eq!(h.input, "1");
        // GSM-7 unpacked: 0x00 is "@", 0x11 "_"; with the Latin-1 default, 0xE9 is "é".
        let h = to_hop(&coded(0, &[0x31, 0x11, 0x32]), &ops, "*152*00#", GSM).unwrap();
        assert_eq!(h.input, "1_2");
        let latin1 = DefaultAlphabet::Latin1;
        let h = to_hop(&coded(0, &[0xE9]), &ops, "*152*00#", latin1).unwrap();
        assert_eq!(h.input, "é");
        let h = to_hop(&coded(3, &[0x31, 0x32]), &ops, "*152*00#", GSM).unwrap();
        assert_eq!(h.input, "12");
        // A UCS2 dial string.
        let dial: Vec<u8> = "*152*00*1#"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let h = to_hop(
            &DeliverMsg {
                data_coding: 8,
                payload: dial,
                ..msg(1, "", None)
            },
            &ops,
            "*152*00#",
            GSM,
        )
        .unwrap();
        assert_eq!((h.kind, h.input.as_str()), (HopKind::New, "1"));
    }

    #[test]
    fn a_whole_screen_is_one_pdu_not_an_sms_segment() {
        let ops = UssdOps::default();
        let m = msg(1, "*152*00#", None);
        // 182 GSM-7 characters (with one extension char counting two: 181 chars), one PDU.
        let gsm = format!("{}€", "a".repeat(180));
        let r = reply_pdu(&m, &Reply::con(gsm.clone()), &ops);
        assert_eq!((r.data_coding, r.payload.len(), r.esm_class), (0, 182, 0));
        assert_eq!(gsm7::decode(&r.payload), gsm);
        // 80 UCS2 characters: 160 octets, not cut at 67.
        let ucs2 = "ŵ".repeat(80);
        let r = reply_pdu(&m, &Reply::con(ucs2.clone()), &ops);
        assert_eq!((r.data_coding, r.payload.len()), (8, 160));
        assert_eq!(mo_text::decode(8, &r.payload, GSM), ucs2);
    }
}
