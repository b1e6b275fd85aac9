//! SMPP PDU adapter (src/smpp/pdu.rs): any frame decodes without a panic and keeps its
//! sequence number (the session answers generic_nack with it); whatever we encode is a
//! well-framed PDU that decodes back to the same command and sequence number.
#![no_main]

use imis_gateway::smpp::pdu::{self, BindKind, Inbound, Outbound, SubmitReq};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn seq_of(i: &Inbound) -> u32 {
    match i {
        Inbound::BindResp { seq, .. }
        | Inbound::SubmitResp { seq, .. }
        | Inbound::Deliver { seq, .. }
        | Inbound::EnquireLink { seq }
        | Inbound::EnquireLinkResp { seq }
        | Inbound::Unbind { seq }
        | Inbound::UnbindResp { seq }
        | Inbound::GenericNack { seq, .. }
        | Inbound::Undecodable { seq, .. }
        | Inbound::Other { seq, .. } => *seq,
    }
}

fn outbound(u: &mut Unstructured<'_>) -> Result<Outbound> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => Outbound::Bind {
            kind: *u.choose(&[
                BindKind::Transceiver,
                BindKind::Transmitter,
                BindKind::Receiver,
            ])?,
            system_id: u.arbitrary()?,
            password: u.arbitrary()?,
        },
        1 => Outbound::DeliverResp {
            status: u.arbitrary()?,
        },
        2 => Outbound::DataResp {
            status: u.arbitrary()?,
        },
        3 => Outbound::EnquireLink,
        4 => Outbound::EnquireLinkResp,
        5 => Outbound::Unbind,
        6 => Outbound::UnbindResp,
        7 => Outbound::GenericNack {
            status: u.arbitrary()?,
        },
        _ => Outbound::Submit(SubmitReq {
            source: u.arbitrary()?,
            dest: u.arbitrary()?,
            data_coding: u.arbitrary()?,
            esm_class: u.arbitrary()?,
            payload: u.arbitrary()?,
            registered_delivery: u.arbitrary()?,
            validity: if u.arbitrary()? {
                Some(pdu::relative_validity(u.arbitrary()?))
            } else {
                u.arbitrary()?
            },
            ussd_service_op: u.arbitrary()?,
            its_session_info: u.arbitrary()?,
        }),
    })
}

fn command_id(o: &Outbound) -> u32 {
    match o {
        Outbound::Bind { kind, .. } => match kind {
            BindKind::Receiver => 0x01,
            BindKind::Transmitter => 0x02,
            BindKind::Transceiver => 0x09,
        },
        Outbound::Submit(_) => 0x04,
        Outbound::DeliverResp { .. } => 0x8000_0005,
        Outbound::DataResp { .. } => 0x8000_0103,
        Outbound::EnquireLink => 0x15,
        Outbound::EnquireLinkResp => 0x8000_0015,
        Outbound::Unbind => 0x06,
        Outbound::UnbindResp => 0x8000_0006,
        Outbound::GenericNack { .. } => 0x8000_0000,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // Peer bytes: a frame as read_frame hands it over (or shorter, or lying about its length).
        let got = pdu::decode(rest);
        if rest.len() >= pdu::HEADER_LEN {
            assert_eq!(
                seq_of(&got),
                be32(rest, 12),
                "sequence number lost: {got:?}"
            );
        }
        if let Inbound::Deliver { msg, .. } = &got {
            // What the MO pipeline does next with a UDHI payload must not panic either.
            if msg.udhi() {
                let _ = imis_gateway::sms::mo_text::split_udh(&msg.payload);
            }
        }
        return;
    }
    let mut u = Unstructured::new(rest);
    let (Ok(out), Ok(seq)) = (outbound(&mut u), u.arbitrary::<u32>()) else {
        return;
    };
    let Ok(bytes) = pdu::encode(&out, seq) else {
        return;
    };
    assert!(bytes.len() >= pdu::HEADER_LEN);
    assert_eq!(be32(&bytes, 0) as usize, bytes.len(), "command_length");
    assert_eq!(be32(&bytes, 4), command_id(&out), "command_id of {out:?}");
    assert_eq!(be32(&bytes, 12), seq, "sequence_number");
    let back = pdu::decode(&bytes);
    assert_eq!(seq_of(&back), seq);
    assert!(
        !matches!(back, Inbound::Undecodable { .. }),
        "we encoded a PDU our own decoder refuses: {out:?} -> {back:?}"
    );
    let want = match &out {
        Outbound::EnquireLink => Some(Inbound::EnquireLink { seq }),
        Outbound::EnquireLinkResp => Some(Inbound::EnquireLinkResp { seq }),
        Outbound::Unbind => Some(Inbound::Unbind { seq }),
        Outbound::UnbindResp => Some(Inbound::UnbindResp { seq }),
        Outbound::GenericNack { status } => Some(Inbound::GenericNack {
            seq,
            status: *status,
        }),
        _ => None,
    };
    if let Some(want) = want {
        assert_eq!(back, want);
    }
});
