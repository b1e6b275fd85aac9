//! The SMSC side's PDUs: framing, what the gateway (an ESME) sends us decoded to a small
//! enum, and what we send encoded, over the rusmpp 0.4.0 codec the gateway itself uses.
//! Framing, the header fields and the PDUs both sides send alike (enquire_link, unbind,
//! generic_nack) are the gateway's own (`imis_gateway::smpp::pdu`); this file adds what
//! only an SMSC reads (binds, submit_sm, deliver_sm_resp) and sends (their responses, MOs).
//!
//! Owns: the bytes of the loadtest's SMSC. Must never: panic on what the gateway sends (a
//! PDU rusmpp cannot decode is reported with its sequence number, for a generic_nack), or
//! send rusmpp's default esm_class (0x08, an ANSI-41 ack) on a deliver_sm.

use bytes::BytesMut;
use imis_gateway::smpp::pdu::{self as esme, Outbound};
use rusmpp::decode::DecodeWithLength;
use rusmpp::encode::{Encode, Length};
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSmResp,
};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, InterfaceVersion, Npi, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::io::AsyncRead;

pub use imis_gateway::smpp::pdu::{be32, FrameError, Inbound};

/// Largest PDU we accept from the gateway.
pub const MAX_PDU: usize = 65_536;

pub mod id {
    pub const BIND_RECEIVER: u32 = 0x01;
    pub const BIND_TRANSMITTER: u32 = 0x02;
    pub const SUBMIT_SM: u32 = 0x04;
    pub const BIND_TRANSCEIVER: u32 = 0x09;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
}

pub mod status {
    pub use imis_gateway::smpp::pdu::status::{OK, SYSERR};
    pub const INVCMDID: u32 = 0x03;
}

/// What the gateway sends us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromEsme {
    Bind {
        seq: u32,
        command_id: u32,
        system_id: String,
        interface_version: u8,
    },
    Submit {
        seq: u32,
        dest: String,
        esm_class: u8,
        data_coding: u8,
        payload: Vec<u8>,
    },
    DeliverResp {
        seq: u32,
        status: u32,
    },
    /// What the gateway's own decoder reads the same way: link PDUs, generic_nack, a body
    /// rusmpp cannot read; anything else (a response, a deliver_sm) is no request to us.
    Common(Inbound),
}

/// Reads one whole PDU, header included, with the gateway's own framing.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    esme::read_frame(r, MAX_PDU).await
}

/// Decodes one frame from [`read_frame`]. What only an SMSC receives (binds, submit_sm,
/// deliver_sm_resp) is decoded here; the rest, and a body rusmpp cannot read, goes to the
/// gateway's own decoder ([`FromEsme::Common`]: an undecodable body keeps its sequence
/// number there).
pub fn decode(frame: &[u8]) -> FromEsme {
    let (command_id, seq) = (be32(frame, 4), be32(frame, 12));
    let smsc_side = matches!(
        command_id,
        id::BIND_RECEIVER
            | id::BIND_TRANSMITTER
            | id::BIND_TRANSCEIVER
            | id::SUBMIT_SM
            | id::DELIVER_SM_RESP
    );
    let body = frame.get(4..).unwrap_or_default();
    let decoded = smsc_side
        .then(|| Command::decode(&mut BytesMut::from(body), body.len()).ok())
        .flatten();
    let Some((cmd, _)) = decoded else {
        return FromEsme::Common(esme::decode(frame));
    };
    let st = u32::from(cmd.status());
    match cmd.pdu() {
        Some(Pdu::BindTransceiver(b)) => bind(seq, command_id, &b.system_id, b.interface_version),
        Some(Pdu::BindTransmitter(b)) => bind(seq, command_id, &b.system_id, b.interface_version),
        Some(Pdu::BindReceiver(b)) => bind(seq, command_id, &b.system_id, b.interface_version),
        Some(Pdu::SubmitSm(s)) => {
            let mut payload = s.short_message().as_ref().to_vec();
            for t in s.tlvs().iter().filter_map(|t| t.value()) {
                if let rusmpp::tlvs::TlvValue::MessagePayload(p) = t {
                    payload = p.value.as_ref().to_vec();
                }
            }
            FromEsme::Submit {
                seq,
                dest: s.destination_addr.as_str().to_string(),
                esm_class: u8::from(s.esm_class),
                data_coding: u8::from(s.data_coding),
                payload,
            }
        }
        Some(Pdu::DeliverSmResp(_)) => FromEsme::DeliverResp { seq, status: st },
        // An error deliver_sm_resp may come without a body.
        _ if cmd.id() == CommandId::DeliverSmResp => FromEsme::DeliverResp { seq, status: st },
        _ => FromEsme::Common(Inbound::Other {
            seq,
            command_id,
            status: st,
        }),
    }
}

fn bind(
    seq: u32,
    command_id: u32,
    system_id: &COctetString<1, 16>,
    v: InterfaceVersion,
) -> FromEsme {
    FromEsme::Bind {
        seq,
        command_id,
        system_id: system_id.as_str().to_string(),
        interface_version: u8::from(v),
    }
}

fn frame(cmd: Command) -> Vec<u8> {
    let len = cmd.length();
    let mut buf = vec![0u8; 4 + len];
    buf[..4].copy_from_slice(&((4 + len) as u32).to_be_bytes());
    cmd.encode(&mut buf[4..]);
    buf
}

const SYSTEM_ID: &str = "LOADTEST";

fn system_id() -> COctetString<1, 16> {
    SYSTEM_ID.parse().unwrap_or_default()
}

/// The answer to a bind of `command_id` (OK, SMPP 3.4).
pub fn bind_resp(command_id: u32, seq: u32) -> Vec<u8> {
    let v = Some(InterfaceVersion::Smpp3_4);
    let pdu: Pdu = match command_id {
        id::BIND_RECEIVER => BindReceiverResp::new(system_id(), v).into(),
        id::BIND_TRANSMITTER => BindTransmitterResp::new(system_id(), v).into(),
        _ => BindTransceiverResp::new(system_id(), v).into(),
    };
    frame(Command::new(CommandStatus::EsmeRok, seq, pdu))
}

/// submit_sm_resp OK with `message_id`.
pub fn submit_resp(seq: u32, message_id: &str) -> Vec<u8> {
    let mid: COctetString<1, 65> = message_id.parse().unwrap_or_default();
    frame(Command::new(
        CommandStatus::EsmeRok,
        seq,
        SubmitSmResp::new(mid, Vec::new()),
    ))
}

/// A PDU both sides send alike, through the gateway's own encoder (it cannot fail for
/// these: they have no fields).
fn link(out: Outbound, seq: u32) -> Vec<u8> {
    esme::encode(&out, seq).unwrap_or_default()
}

#[cfg(test)]
pub fn enquire_link(seq: u32) -> Vec<u8> {
    link(Outbound::EnquireLink, seq)
}

pub fn enquire_link_resp(seq: u32) -> Vec<u8> {
    link(Outbound::EnquireLinkResp, seq)
}

pub fn unbind_resp(seq: u32) -> Vec<u8> {
    link(Outbound::UnbindResp, seq)
}

pub fn generic_nack(seq: u32, status: u32) -> Vec<u8> {
    link(Outbound::GenericNack { status }, seq)
}

#[derive(Debug, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An MO: deliver_sm from `from` to `to`, GSM-7 default alphabet (data_coding 0), plain
/// esm_class 0x00. ASCII letters, digits and spaces are the same bytes in GSM-7 unpacked.
pub fn deliver_sm(seq: u32, from: &str, to: &str, text: &str) -> Result<Vec<u8>, EncodeError> {
    let addr = |field: &str, v: &str| -> Result<COctetString<1, 21>, EncodeError> {
        v.parse()
            .map_err(|_| EncodeError(format!("{field} {v:?} does not fit SMPP")))
    };
    let sm = OctetString::<0, 255>::from_slice(text.as_bytes())
        .map_err(|_| EncodeError(format!("MO text of {} octets is too long", text.len())))?;
    let pdu = DeliverSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(addr("source_addr", from)?)
        .dest_addr_ton(Ton::Unknown)
        .dest_addr_npi(Npi::Unknown)
        .destination_addr(addr("destination_addr", to)?)
        // Explicit: rusmpp 0.4.0's EsmClass::default() is 0x08.
        .esm_class(EsmClass::from(0u8))
        .data_coding(DataCoding::from(0u8))
        .short_message(sm)
        .build();
    Ok(frame(Command::new(CommandStatus::EsmeRok, seq, pdu)))
}

/// Which part of a concatenated MT this is: `(seq, total)` from the UDH concatenation IE
/// (8-bit or 16-bit reference); `None` when the message is not concatenated.
pub fn concat_part(esm_class: u8, payload: &[u8]) -> Option<(u8, u8)> {
    if esm_class & 0x40 == 0 {
        return None;
    }
    let udhl = usize::from(*payload.first()?);
    let udh = payload.get(1..1 + udhl)?;
    let mut i = 0;
    while i + 2 <= udh.len() {
        let (iei, len) = (udh[i], usize::from(udh[i + 1]));
        let ie = udh.get(i + 2..i + 2 + len)?;
        match (iei, len) {
            (0x00, 3) => return Some((ie[2], ie[1])),
            (0x08, 4) => return Some((ie[3], ie[2])),
            _ => {}
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::pdus::{BindTransceiver, SubmitSm};

    fn encode_cmd(cmd: Command) -> Vec<u8> {
        frame(cmd)
    }

    #[test]
    fn a_bind_transceiver_decodes_and_gets_a_3_4_resp_with_its_sequence_number() {
        let bind = BindTransceiver::builder()
            .system_id("imisgw".parse().unwrap())
            .password("pw".parse().unwrap())
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        let f = encode_cmd(Command::new(CommandStatus::EsmeRok, 7, bind));
        assert_eq!(
            decode(&f),
            FromEsme::Bind {
                seq: 7,
                command_id: id::BIND_TRANSCEIVER,
                system_id: "imisgw".into(),
                interface_version: 0x34,
            }
        );
        let r = bind_resp(id::BIND_TRANSCEIVER, 7);
        assert_eq!(be32(&r, 0) as usize, r.len());
        assert_eq!(be32(&r, 4), 0x8000_0009);
        assert_eq!((be32(&r, 8), be32(&r, 12)), (0, 7));
        assert_eq!(&r[16..25], b"LOADTEST\0");
        assert_eq!(be32(&bind_resp(id::BIND_RECEIVER, 1), 4), 0x8000_0001);
    }

    #[test]
    fn a_submit_sm_gives_its_destination_and_payload_and_a_resp_carries_the_id() {
        let s = SubmitSm::builder()
            .source_addr("CHF".parse().unwrap())
            .destination_addr("255759900001".parse().unwrap())
            .esm_class(EsmClass::from(0x40u8))
            .data_coding(DataCoding::from(8u8))
            .short_message(OctetString::from_slice(&[5, 0, 3, 9, 2, 1, 0, 0x41]).unwrap())
            .build();
        let f = encode_cmd(Command::new(CommandStatus::EsmeRok, 42, s));
        let FromEsme::Submit {
            seq,
            dest,
            esm_class,
            data_coding,
            payload,
        } = decode(&f)
        else {
            panic!("{:?}", decode(&f));
        };
        assert_eq!(
            (seq, dest.as_str(), esm_class, data_coding),
            (42, "255759900001", 0x40, 8)
        );
        assert_eq!(concat_part(esm_class, &payload), Some((1, 2)));
        let r = submit_resp(42, "1F");
        assert_eq!((be32(&r, 4), be32(&r, 12)), (0x8000_0004, 42));
        assert_eq!(&r[16..], b"1F\0");
    }

    #[test]
    fn a_deliver_sm_goes_out_plain_gsm7_with_esm_class_zero() {
        let f = deliver_sm(5, "255759900001", "15200", "STATUS 200000018").unwrap();
        assert_eq!(be32(&f, 0) as usize, f.len());
        assert_eq!((be32(&f, 4), be32(&f, 12)), (0x05, 5));
        let body = &f[16..];
        // service_type "" | ton 1 npi 1 source | ton 0 npi 0 dest | esm_class.
        assert_eq!(&body[..3], &[0, 1, 1]);
        let esm_at = 1 + 2 + 13 + 2 + 6;
        assert_eq!(body[esm_at], 0x00, "never rusmpp's default 0x08");
        assert!(f.ends_with(b"STATUS 200000018"));
        assert!(deliver_sm(1, &"1".repeat(30), "15200", "x").is_err());
        assert!(deliver_sm(1, "255759900001", "15200", &"x".repeat(300)).is_err());
    }

    #[test]
    fn link_pdus_and_errors_round_trip_through_the_decoder() {
        assert_eq!(
            decode(&enquire_link(3)),
            FromEsme::Common(Inbound::EnquireLink { seq: 3 })
        );
        assert_eq!(
            decode(&enquire_link_resp(3)),
            FromEsme::Common(Inbound::EnquireLinkResp { seq: 3 })
        );
        assert_eq!(
            decode(&unbind_resp(4)),
            FromEsme::Common(Inbound::UnbindResp { seq: 4 })
        );
        assert_eq!(
            decode(&generic_nack(5, status::INVCMDID)),
            FromEsme::Common(Inbound::GenericNack { seq: 5, status: 3 })
        );
        // A deliver_sm_resp with an error status and no body.
        let mut f = 16u32.to_be_bytes().to_vec();
        f.extend(0x8000_0005u32.to_be_bytes());
        f.extend(0x64u32.to_be_bytes());
        f.extend(9u32.to_be_bytes());
        assert_eq!(
            decode(&f),
            FromEsme::DeliverResp {
                seq: 9,
                status: 0x64
            }
        );
        // What only an SMSC sends is no request to us (the caller nacks it).
        assert!(matches!(
            decode(&bind_resp(id::BIND_TRANSCEIVER, 6)),
            FromEsme::Common(Inbound::BindResp { seq: 6, .. })
        ));
        // A body rusmpp cannot read keeps its sequence number.
        let mut bad = 20u32.to_be_bytes().to_vec();
        bad.extend(0x04u32.to_be_bytes());
        bad.extend(0u32.to_be_bytes());
        bad.extend(0x77u32.to_be_bytes());
        bad.extend([1, 2, 3, 4]);
        assert!(matches!(
            decode(&bad),
            FromEsme::Common(Inbound::Undecodable {
                seq: 0x77,
                command_id: 4,
                ..
            })
        ));
    }

    #[test]
    fn concatenation_ies_are_read_with_8_and_16_bit_references() {
        assert_eq!(concat_part(0x00, &[5, 0, 3, 1, 2, 2]), None);
        assert_eq!(concat_part(0x40, &[5, 0, 3, 1, 2, 2, b'x']), Some((2, 2)));
        assert_eq!(
            concat_part(0x40, &[6, 8, 4, 0, 1, 3, 1, b'x']),
            Some((1, 3))
        );
        // Another IE first, then the concatenation IE.
        assert_eq!(
            concat_part(0x40, &[8, 0x24, 1, 0, 0, 3, 7, 2, 2]),
            Some((2, 2))
        );
        // Truncated or empty UDH: no part, no panic.
        assert_eq!(concat_part(0x40, &[5, 0, 3]), None);
        assert_eq!(concat_part(0x40, &[]), None);
    }

    #[tokio::test]
    async fn frames_with_an_impossible_length_are_refused() {
        let mut r: &[u8] = &[0, 0, 0, 4];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::Length(4, MAX_PDU))
        ));
        let mut r: &[u8] = &[0, 2, 0, 0];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::Length(..))
        ));
        let f = enquire_link(9);
        let mut two = f.clone();
        two.extend(&f);
        let mut r: &[u8] = &two;
        assert_eq!(read_frame(&mut r).await.unwrap(), f);
        assert_eq!(read_frame(&mut r).await.unwrap(), f);
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Io(_))));
    }
}
