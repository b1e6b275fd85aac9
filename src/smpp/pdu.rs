//! The PDU adapter: SMPP bytes ⇄ this crate's own request and event types, over the
//! rusmpp 0.4.0 codec.
//!
//! Owns: framing (command_length), decoding one frame in isolation so that a PDU rusmpp
//! cannot decode is reported with its sequence number (for a generic_nack) while the
//! stream stays in sync, and building the PDUs we send with explicit esm_class (rusmpp's
//! default is the wrong 0x08) and interface_version 3.4.
//! Must never: leak a rusmpp type past this file (the session and the pipelines see only
//! [`Inbound`] and [`Outbound`]), or panic on peer input.

use bytes::BytesMut;
use rusmpp::decode::DecodeWithLength;
use rusmpp::encode::{Encode, Length};
use rusmpp::pdus::{
    BindReceiver, BindTransceiver, BindTransmitter, DataSmResp, DeliverSmResp, SubmitSm,
};
use rusmpp::tlvs::{MessageSubmissionRequestTlvValue, TlvValue};
use rusmpp::types::{AnyOctetString, COctetString, EmptyOrFullCOctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, ItsSessionInfo, MessagePayload, Npi,
    RegisteredDelivery, ServiceType, Ton, UssdServiceOp,
};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const HEADER_LEN: usize = 16;
pub const GENERIC_NACK: u32 = 0x8000_0000;

/// Command status values the session acts on.
pub mod status {
    pub const OK: u32 = 0x00;
    pub const INVMSGLEN: u32 = 0x01;
    pub const INVCMDLEN: u32 = 0x02;
    pub const INVBNDSTS: u32 = 0x04;
    pub const SYSERR: u32 = 0x08;
    pub const MSGQFUL: u32 = 0x14;
    pub const THROTTLED: u32 = 0x58;
    pub const RX_T_APPN: u32 = 0x64;
    pub const RX_P_APPN: u32 = 0x65;
    // Field errors a deliver_sm / data_sm is refused with (see `fields`).
    pub const INVSRCADR: u32 = 0x0A;
    pub const INVDSTADR: u32 = 0x0B;
    pub const INVSERTYP: u32 = 0x15;
    pub const INVSCHED: u32 = 0x61;
    pub const INVEXPIRY: u32 = 0x62;
    pub const INVOPTPARSTREAM: u32 = 0xC0;
    pub const INVPARLEN: u32 = 0xC2;
    pub const INVOPTPARAMVAL: u32 = 0xC4;
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The stream cannot be resynchronised: the connection must be dropped.
    #[error("command_length {0} is outside 16..={1}")]
    Length(u32, usize),
}

/// Reads one whole PDU (header included). A bad command_length is fatal for the stream,
/// since nothing marks where the next PDU starts.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len);
    let total = usize::try_from(n).unwrap_or(usize::MAX);
    if !(HEADER_LEN..=max).contains(&total) {
        return Err(FrameError::Length(n, max));
    }
    let mut buf = vec![0u8; total];
    buf[..4].copy_from_slice(&len);
    r.read_exact(&mut buf[4..]).await?;
    Ok(buf)
}

/// How the ESME binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    Transceiver,
    Transmitter,
    Receiver,
}

impl BindKind {
    pub fn can_submit(self) -> bool {
        self != BindKind::Receiver
    }
    pub fn name(self) -> &'static str {
        match self {
            BindKind::Transceiver => "transceiver",
            BindKind::Transmitter => "transmitter",
            BindKind::Receiver => "receiver",
        }
    }
}

/// A submit_sm as the pipeline wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitReq {
    pub source: String,
    pub dest: String,
    pub data_coding: u8,
    /// Sent as is: 0x00 plain, 0x40 with a UDH.
    pub esm_class: u8,
    pub payload: Vec<u8>,
    pub registered_delivery: bool,
    /// Relative validity period (`YYMMDDhhmmss000R`), or none for the SMSC default.
    pub validity: Option<String>,
    pub ussd_service_op: Option<u8>,
    pub its_session_info: Option<[u8; 2]>,
}

/// What we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Bind {
        kind: BindKind,
        system_id: String,
        password: String,
    },
    Submit(SubmitReq),
    DeliverResp {
        status: u32,
    },
    DataResp {
        status: u32,
    },
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack {
        status: u32,
    },
}

/// A deliver_sm or data_sm, reduced to what the pipelines read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliverMsg {
    pub data_sm: bool,
    pub source: String,
    pub dest: String,
    pub esm_class: u8,
    pub data_coding: u8,
    /// short_message, or message_payload when that TLV is present.
    pub payload: Vec<u8>,
    pub receipted_message_id: Option<String>,
    pub message_state: Option<u8>,
    /// (reference, total, seq) from the SAR TLVs.
    pub sar: Option<(u16, u8, u8)>,
    pub ussd_service_op: Option<u8>,
    pub its_session_info: Option<[u8; 2]>,
}

impl DeliverMsg {
    /// esm_class message type 0x04: an SMSC delivery receipt.
    pub fn is_receipt(&self) -> bool {
        self.esm_class & 0x3c == 0x04
    }
    pub fn udhi(&self) -> bool {
        self.esm_class & 0x40 != 0
    }
}

/// What we receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    BindResp {
        seq: u32,
        status: u32,
    },
    SubmitResp {
        seq: u32,
        status: u32,
        message_id: String,
    },
    Deliver {
        seq: u32,
        msg: DeliverMsg,
    },
    EnquireLink {
        seq: u32,
    },
    EnquireLinkResp {
        seq: u32,
    },
    Unbind {
        seq: u32,
    },
    UnbindResp {
        seq: u32,
    },
    GenericNack {
        seq: u32,
        status: u32,
    },
    /// rusmpp could not decode the body: answer generic_nack, keep the bind.
    Undecodable {
        seq: u32,
        command_id: u32,
        error: String,
    },
    Other {
        seq: u32,
        command_id: u32,
        status: u32,
    },
}

/// The big-endian u32 at `at` (a header field), 0 when the frame is too short.
pub fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
}

/// Decodes one frame from [`read_frame`].
pub fn decode(frame: &[u8]) -> Inbound {
    let (command_id, seq) = (be32(frame, 4), be32(frame, 12));
    let mut buf = BytesMut::from(frame.get(4..).unwrap_or_default());
    let len = buf.len();
    let cmd = match Command::decode(&mut buf, len) {
        Ok((cmd, _)) => cmd,
        Err(e) => {
            return Inbound::Undecodable {
                seq,
                command_id,
                error: e.to_string(),
            }
        }
    };
    let st = u32::from(cmd.status());
    match cmd.pdu() {
        Some(Pdu::BindTransceiverResp(_))
        | Some(Pdu::BindTransmitterResp(_))
        | Some(Pdu::BindReceiverResp(_)) => Inbound::BindResp { seq, status: st },
        Some(Pdu::SubmitSmResp(r)) => Inbound::SubmitResp {
            seq,
            status: st,
            message_id: r.message_id().as_str().to_string(),
        },
        Some(Pdu::DeliverSm(d)) => {
            let mut m = DeliverMsg {
                data_sm: false,
                source: d.source_addr.as_str().to_string(),
                dest: d.destination_addr.as_str().to_string(),
                esm_class: u8::from(d.esm_class),
                data_coding: u8::from(d.data_coding),
                payload: d.short_message().as_ref().to_vec(),
                ..DeliverMsg::default()
            };
            read_tlvs(d.tlvs().iter().filter_map(|t| t.value()), &mut m);
            Inbound::Deliver { seq, msg: m }
        }
        Some(Pdu::DataSm(d)) => {
            let mut m = DeliverMsg {
                data_sm: true,
                source: d.source_addr.as_str().to_string(),
                dest: d.destination_addr.as_str().to_string(),
                esm_class: u8::from(d.esm_class),
                data_coding: u8::from(d.data_coding),
                ..DeliverMsg::default()
            };
            read_tlvs(d.tlvs().iter().filter_map(|t| t.value()), &mut m);
            Inbound::Deliver { seq, msg: m }
        }
        Some(Pdu::EnquireLink) => Inbound::EnquireLink { seq },
        Some(Pdu::EnquireLinkResp) => Inbound::EnquireLinkResp { seq },
        Some(Pdu::Unbind) => Inbound::Unbind { seq },
        Some(Pdu::UnbindResp) => Inbound::UnbindResp { seq },
        Some(Pdu::GenericNack) => Inbound::GenericNack { seq, status: st },
        _ => match cmd.id() {
            CommandId::EnquireLink => Inbound::EnquireLink { seq },
            CommandId::EnquireLinkResp => Inbound::EnquireLinkResp { seq },
            CommandId::Unbind => Inbound::Unbind { seq },
            CommandId::UnbindResp => Inbound::UnbindResp { seq },
            CommandId::GenericNack => Inbound::GenericNack { seq, status: st },
            // A submit_sm_resp with an error status may come without a body.
            CommandId::SubmitSmResp => Inbound::SubmitResp {
                seq,
                status: st,
                message_id: String::new(),
            },
            CommandId::BindTransceiverResp
            | CommandId::BindTransmitterResp
            | CommandId::BindReceiverResp => Inbound::BindResp { seq, status: st },
            _ => Inbound::Other {
                seq,
                command_id,
                status: st,
            },
        },
    }
}

fn read_tlvs<'a>(tlvs: impl Iterator<Item = &'a TlvValue>, m: &mut DeliverMsg) {
    let (mut r, mut t, mut s) = (None, None, None);
    for v in tlvs {
        match v {
            TlvValue::ReceiptedMessageId(id) => {
                m.receipted_message_id = Some(id.as_str().to_string())
            }
            TlvValue::MessageState(st) => m.message_state = Some(u8::from(*st)),
            TlvValue::MessagePayload(p) => m.payload = p.value.as_ref().to_vec(),
            TlvValue::SarMsgRefNum(x) => r = Some(*x),
            TlvValue::SarTotalSegments(x) => t = Some(*x),
            TlvValue::SarSegmentSeqnum(x) => s = Some(*x),
            TlvValue::UssdServiceOp(op) => m.ussd_service_op = Some(u8::from(*op)),
            TlvValue::ItsSessionInfo(i) => {
                m.its_session_info = Some([i.session_number, i.sequence_number])
            }
            _ => {}
        }
    }
    if let (Some(r), Some(t), Some(s)) = (r, t, s) {
        m.sar = Some((r, t, s));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} {value:?} does not fit SMPP")]
    Field { field: &'static str, value: String },
}

fn cstr<const MIN: usize, const MAX: usize>(
    field: &'static str,
    v: &str,
) -> Result<COctetString<MIN, MAX>, EncodeError> {
    v.parse().map_err(|_| EncodeError::Field {
        field,
        value: v.to_string(),
    })
}

/// Encodes `out` with sequence number `seq` as one PDU.
pub fn encode(out: &Outbound, seq: u32) -> Result<Vec<u8>, EncodeError> {
    let ok = CommandStatus::EsmeRok;
    let cmd = match out {
        Outbound::Bind {
            kind,
            system_id,
            password,
        } => {
            let (sid, pw) = (cstr("system_id", system_id)?, cstr("password", password)?);
            let v = InterfaceVersion::Smpp3_4;
            let (t, n) = (Ton::Unknown, Npi::Unknown);
            let (st, ar) = (COctetString::empty(), COctetString::empty());
            let pdu: Pdu = match kind {
                BindKind::Transceiver => BindTransceiver::new(sid, pw, st, v, t, n, ar).into(),
                BindKind::Transmitter => BindTransmitter::new(sid, pw, st, v, t, n, ar).into(),
                BindKind::Receiver => BindReceiver::new(sid, pw, st, v, t, n, ar).into(),
            };
            Command::new(ok, seq, pdu)
        }
        Outbound::Submit(s) => Command::new(ok, seq, submit_sm(s)?),
        Outbound::DeliverResp { status } => Command::new(
            CommandStatus::from(*status),
            seq,
            DeliverSmResp::builder().build(),
        ),
        Outbound::DataResp { status } => Command::new(
            CommandStatus::from(*status),
            seq,
            DataSmResp::builder().build(),
        ),
        Outbound::EnquireLink => Command::new(ok, seq, Pdu::EnquireLink),
        Outbound::EnquireLinkResp => Command::new(ok, seq, Pdu::EnquireLinkResp),
        Outbound::Unbind => Command::new(ok, seq, Pdu::Unbind),
        Outbound::UnbindResp => Command::new(ok, seq, Pdu::UnbindResp),
        Outbound::GenericNack { status } => {
            Command::new(CommandStatus::from(*status), seq, Pdu::GenericNack)
        }
    };
    let len = cmd.length();
    let mut buf = vec![0u8; 4 + len];
    buf[..4].copy_from_slice(&((4 + len) as u32).to_be_bytes());
    cmd.encode(&mut buf[4..]);
    Ok(buf)
}

fn submit_sm(s: &SubmitReq) -> Result<SubmitSm, EncodeError> {
    let numeric = |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit());
    let (src_ton, src_npi) = if numeric(&s.source) {
        (Ton::International, Npi::Isdn)
    } else {
        (Ton::Alphanumeric, Npi::Unknown)
    };
    let mut tlvs: Vec<MessageSubmissionRequestTlvValue> = Vec::new();
    // Payloads over 254 octets go in message_payload, with sm_length 0.
    let (short, long) = if s.payload.len() <= 254 {
        (s.payload.as_slice(), None)
    } else {
        (&[][..], Some(s.payload.as_slice()))
    };
    if let Some(p) = long {
        tlvs.push(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_slice(p)),
        ));
    }
    if let Some(op) = s.ussd_service_op {
        tlvs.push(MessageSubmissionRequestTlvValue::UssdServiceOp(
            UssdServiceOp::from(op),
        ));
    }
    if let Some([a, b]) = s.its_session_info {
        tlvs.push(MessageSubmissionRequestTlvValue::ItsSessionInfo(
            ItsSessionInfo::new(a, b),
        ));
    }
    let validity = match &s.validity {
        Some(v) => EmptyOrFullCOctetString::<17>::from_slice(format!("{v}\0").as_bytes()).map_err(
            |_| EncodeError::Field {
                field: "validity_period",
                value: v.clone(),
            },
        )?,
        None => EmptyOrFullCOctetString::empty(),
    };
    let short_message =
        OctetString::<0, 255>::from_slice(short).map_err(|_| EncodeError::Field {
            field: "short_message",
            value: format!("{} octets", short.len()),
        })?;
    Ok(SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(src_ton)
        .source_addr_npi(src_npi)
        .source_addr(cstr("source_addr", &s.source)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(cstr("destination_addr", &s.dest)?)
        // Explicit: rusmpp 0.4.0's EsmClass::default() is 0x08 (an ANSI-41 ack).
        .esm_class(EsmClass::from(s.esm_class))
        .validity_period(validity)
        .registered_delivery(RegisteredDelivery::from(u8::from(s.registered_delivery)))
        .data_coding(DataCoding::from(s.data_coding))
        .short_message(short_message)
        .tlvs(tlvs)
        .build())
}

/// A relative validity period (`YYMMDDhhmmss000R`) for `secs` (capped at 99 days).
pub fn relative_validity(secs: u64) -> String {
    let secs = secs.min(99 * 86_400);
    let (d, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("0000{d:02}{h:02}{m:02}{s:02}000R")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit() -> SubmitReq {
        SubmitReq {
            source: "CHF".into(),
            dest: "255754000001".into(),
            data_coding: 0,
            esm_class: 0,
            payload: b"Habari".to_vec(),
            registered_delivery: true,
            validity: Some(relative_validity(86_400)),
            ussd_service_op: None,
            its_session_info: None,
        }
    }

    #[test]
    fn submit_sm_goes_out_with_an_explicit_esm_class_and_the_fields_we_set() {
        let bytes = encode(&Outbound::Submit(submit()), 7).unwrap();
        assert_eq!(be32(&bytes, 0) as usize, bytes.len());
        assert_eq!((be32(&bytes, 4), be32(&bytes, 12)), (0x04, 7));
        // service_type "" | src ton 5 npi 0 "CHF" | dst ton 1 npi 1 number | esm_class.
        let body = &bytes[16..];
        assert_eq!(&body[..7], &[0, 5, 0, b'C', b'H', b'F', 0]);
        let esm_at = 1 + 2 + 4 + 2 + 13;
        assert_eq!(body[esm_at], 0x00, "never rusmpp's default 0x08");
        assert!(bytes.windows(17).any(|w| w == b"000001000000000R\0"));
    }

    #[test]
    fn bind_is_smpp_3_4() {
        let b = encode(
            &Outbound::Bind {
                kind: BindKind::Transceiver,
                system_id: "esme".into(),
                password: "secret".into(),
            },
            1,
        )
        .unwrap();
        assert_eq!(be32(&b, 4), 0x09);
        // system_id\0 password\0 system_type\0 then interface_version.
        assert_eq!(b[16 + 5 + 7 + 1], 0x34);
        assert!(encode(
            &Outbound::Bind {
                kind: BindKind::Receiver,
                system_id: "x".repeat(40),
                password: String::new(),
            },
            1
        )
        .is_err());
    }

    #[test]
    fn a_deliver_sm_with_a_bad_field_is_undecodable_with_its_sequence_number() {
        let mut body = vec![0u8, 0, 0];
        body.extend(std::iter::repeat_n(b'1', 30)); // source_addr over 21 octets
        body.extend([0, 0, 0, b'1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut f = ((16 + body.len()) as u32).to_be_bytes().to_vec();
        f.extend(5u32.to_be_bytes());
        f.extend(0u32.to_be_bytes());
        f.extend(0x1234u32.to_be_bytes());
        f.extend(body);
        assert!(matches!(
            decode(&f),
            Inbound::Undecodable {
                seq: 0x1234,
                command_id: 5,
                ..
            }
        ));
        assert!(matches!(
            decode(&[0, 0]),
            Inbound::Undecodable { .. } | Inbound::Other { .. }
        ));
    }

    #[test]
    fn responses_and_link_pdus_round_trip() {
        for (out, want) in [
            (Outbound::EnquireLink, Inbound::EnquireLink { seq: 3 }),
            (
                Outbound::EnquireLinkResp,
                Inbound::EnquireLinkResp { seq: 3 },
            ),
            (Outbound::Unbind, Inbound::Unbind { seq: 3 }),
            (Outbound::UnbindResp, Inbound::UnbindResp { seq: 3 }),
            (
                Outbound::GenericNack { status: 2 },
                Inbound::GenericNack { seq: 3, status: 2 },
            ),
        ] {
            assert_eq!(decode(&encode(&out, 3).unwrap()), want);
        }
        assert_eq!(relative_validity(90_061), "000001010101000R");
    }

    #[tokio::test]
    async fn frames_with_an_impossible_length_are_fatal() {
        let mut r: &[u8] = &[0, 0, 0, 4];
        assert!(matches!(
            read_frame(&mut r, 4096).await,
            Err(FrameError::Length(4, _))
        ));
        let mut r: &[u8] = &[0, 1, 0, 0];
        assert!(read_frame(&mut r, 4096).await.is_err());
        let f = encode(&Outbound::EnquireLink, 9).unwrap();
        let mut r: &[u8] = &f;
        assert_eq!(read_frame(&mut r, 4096).await.unwrap(), f);
    }
}
