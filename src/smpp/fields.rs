//! Which field of a framed deliver_sm / data_sm is wrong, as the SMPP 3.4 status to answer
//! it with (§5.1.3), for a PDU that rusmpp could not decode.
//!
//! Owns: a walk over the body by the SMPP 3.4 field rules (C-Octet String limits, the
//! absolute/relative time format's 17 octets, sm_length, the TLV stream) that names the
//! first bad field. Must never: be used to accept a PDU (rusmpp decodes; this only
//! explains a refusal), or panic on any input.
//!
//! Why: an SMSC that gets generic_nack for a well-framed deliver_sm either redelivers it
//! for ever or drops it without a trace; a deliver_sm_resp with the field's status (a
//! permanent error) tells it exactly what is wrong with that one message.

use super::pdu::status;

pub const DELIVER_SM: u32 = 0x0000_0005;
pub const DATA_SM: u32 = 0x0000_0103;

/// The verdict on one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub status: u32,
}

impl FieldError {
    fn new(field: &'static str, status: u32) -> FieldError {
        FieldError { field, status }
    }
}

/// The first bad field of a deliver_sm or data_sm `body` (the octets after the 16-octet
/// header). When every field passes these rules but rusmpp still refused the PDU, the
/// answer is ESME_RX_P_APPN: a permanent refusal, so the SMSC does not loop on it.
pub fn field_error(command_id: u32, body: &[u8]) -> FieldError {
    let r = if command_id == DATA_SM {
        walk_data_sm(&mut Cursor(body))
    } else {
        walk_deliver_sm(&mut Cursor(body))
    };
    r.err()
        .unwrap_or(FieldError::new("unknown", status::RX_P_APPN))
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self, field: &'static str) -> Result<u8, FieldError> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or(FieldError::new(field, status::INVCMDLEN))?;
        self.0 = rest;
        Ok(b)
    }

    fn bytes(&mut self, n: usize, field: &'static str, st: u32) -> Result<&[u8], FieldError> {
        if self.0.len() < n {
            return Err(FieldError::new(field, st));
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b)
    }

    /// A C-Octet String of at most `max` octets including its NUL, ASCII (rusmpp's rule).
    fn cstr(&mut self, max: usize, field: &'static str, st: u32) -> Result<(), FieldError> {
        let end = self.0.iter().position(|&b| b == 0);
        match end {
            Some(n) if n < max && self.0[..n].is_ascii() => {
                self.0 = &self.0[n + 1..];
                Ok(())
            }
            // No NUL at all: the body ended inside the field.
            None if self.0.len() < max => Err(FieldError::new(field, status::INVCMDLEN)),
            _ => Err(FieldError::new(field, st)),
        }
    }

    /// A time field: empty (one NUL) or exactly 16 characters and a NUL.
    fn time(&mut self, field: &'static str, st: u32) -> Result<(), FieldError> {
        let n = self.0.iter().position(|&b| b == 0);
        match n {
            Some(0) | Some(16) => self.cstr(17, field, st),
            None if self.0.len() < 17 => Err(FieldError::new(field, status::INVCMDLEN)),
            _ => Err(FieldError::new(field, st)),
        }
    }
}

/// service_type and both addresses, common to deliver_sm and data_sm (whose addresses
/// may be longer: `addr_max`).
fn walk_addresses(c: &mut Cursor, addr_max: usize) -> Result<(), FieldError> {
    use status::*;
    c.cstr(6, "service_type", INVSERTYP)?;
    c.bytes(2, "source_addr_ton/npi", INVCMDLEN)?;
    c.cstr(addr_max, "source_addr", INVSRCADR)?;
    c.bytes(2, "dest_addr_ton/npi", INVCMDLEN)?;
    c.cstr(addr_max, "destination_addr", INVDSTADR)
}

fn walk_deliver_sm(c: &mut Cursor) -> Result<(), FieldError> {
    use status::*;
    walk_addresses(c, 21)?;
    c.bytes(3, "esm_class/protocol_id/priority_flag", INVCMDLEN)?;
    c.time("schedule_delivery_time", INVSCHED)?;
    c.time("validity_period", INVEXPIRY)?;
    c.bytes(4, "registered_delivery..sm_default_msg_id", INVCMDLEN)?;
    let sm_length = usize::from(c.u8("sm_length")?);
    if sm_length > 254 {
        return Err(FieldError::new("short_message", INVMSGLEN));
    }
    c.bytes(sm_length, "short_message", INVMSGLEN)?;
    walk_tlvs(c)
}

fn walk_data_sm(c: &mut Cursor) -> Result<(), FieldError> {
    walk_addresses(c, 65)?;
    c.bytes(
        3,
        "esm_class/registered_delivery/data_coding",
        status::INVCMDLEN,
    )?;
    walk_tlvs(c)
}

/// Fixed value lengths of the SMPP 3.4 TLVs (§5.3.2); the others are variable.
fn fixed_len(tag: u16) -> Option<usize> {
    Some(match tag {
        // alert_on_message_delivery
        0x130C => 0,
        // subunits, network and bearer types, source_telematics_id, payload_type,
        // ms_msg_wait_facilities, privacy_indicator, user_response_code, language_indicator,
        // sar_total_segments / sar_segment_seqnum, sc_interface_version,
        // callback_num_pres_ind, number_of_messages, dpf_result, set_dpf,
        // ms_availability_status, delivery_failure_reason, more_messages_to_send,
        // message_state, ussd_service_op, display_time, ms_validity, its_reply_type
        0x0005 | 0x0006 | 0x0007 | 0x000D | 0x000E | 0x000F | 0x0010 | 0x0019 | 0x0030 | 0x0201
        | 0x0205 | 0x020D | 0x020E | 0x020F | 0x0210 | 0x0302 | 0x0304 | 0x0420 | 0x0421
        | 0x0422 | 0x0425 | 0x0426 | 0x0427 | 0x0501 | 0x1201 | 0x1204 | 0x1380 => 1,
        // dest_telematics_id, user_message_reference, source/destination_port,
        // sar_msg_ref_num, sms_signal, its_session_info
        0x0008 | 0x0204 | 0x020A | 0x020B | 0x020C | 0x1203 | 0x1383 => 2,
        // network_error_code
        0x0423 => 3,
        // qos_time_to_live
        0x0017 => 4,
        _ => return None,
    })
}

fn walk_tlvs(c: &mut Cursor) -> Result<(), FieldError> {
    use status::*;
    while !c.0.is_empty() {
        let head = c.bytes(4, "TLV header", INVOPTPARSTREAM)?;
        let tag = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = c.bytes(len, "TLV length", INVOPTPARSTREAM)?;
        if fixed_len(tag).is_some_and(|n| n != len) {
            return Err(FieldError::new("TLV length", INVPARLEN));
        }
        // receipted_message_id: a C-Octet String of at most 65 octets.
        if tag == 0x001E && Cursor(value).cstr(65, "receipted_message_id", 0).is_err() {
            return Err(FieldError::new("receipted_message_id", INVOPTPARAMVAL));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::pdu::status::*;
    use super::*;

    /// A deliver_sm body with the given addresses, short_message and TLV bytes.
    fn body(src: &[u8], dst: &[u8], sched: &[u8], sm: &[u8], sm_len: u8, tlvs: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 1, 1];
        b.extend(src);
        b.extend([1, 1]); // dest ton, npi
        b.extend(dst);
        b.extend([0, 0, 0]); // esm_class, protocol_id, priority_flag
        b.extend(sched);
        // validity_period "", registered_delivery, replace_if_present, data_coding,
        // sm_default_msg_id, sm_length
        b.extend([0, 0, 0, 0, 0, sm_len]);
        b.extend(sm);
        b.extend(tlvs);
        b
    }

    fn deliver(b: &[u8]) -> (&'static str, u32) {
        let e = field_error(DELIVER_SM, b);
        (e.field, e.status)
    }

    #[test]
    fn names_the_overlong_address_time_and_message_fields() {
        let ok = body(b"255754000001\0", b"15200\0", b"\0", b"HI", 2, &[]);
        assert_eq!(deliver(&ok), ("unknown", RX_P_APPN), "nothing wrong found");
        let long = [b'1'; 30];
        let src = [&long[..], b"\0"].concat();
        assert_eq!(
            deliver(&body(&src, b"15200\0", b"\0", b"HI", 2, &[])),
            ("source_addr", INVSRCADR)
        );
        assert_eq!(
            deliver(&body(b"1\0", &src, b"\0", b"HI", 2, &[])),
            ("destination_addr", INVDSTADR)
        );
        assert_eq!(
            deliver(&body(b"1\0", b"2\0", b"2612\0", b"HI", 2, &[])),
            ("schedule_delivery_time", INVSCHED)
        );
        // sm_length says 9 but only 2 octets follow; and 255 is over the limit.
        assert_eq!(
            deliver(&body(b"1\0", b"2\0", b"\0", b"HI", 9, &[])),
            ("short_message", INVMSGLEN)
        );
        assert_eq!(
            deliver(&body(b"1\0", b"2\0", b"\0", &[b'x'; 255], 255, &[])),
            ("short_message", INVMSGLEN)
        );
        // Non-ASCII in an address.
        assert_eq!(
            deliver(&body(&[0xC3, 0xA9, 0], b"2\0", b"\0", b"", 0, &[])),
            ("source_addr", INVSRCADR)
        );
    }

    #[test]
    fn names_tlv_stream_and_length_errors() {
        let d = |t: &[u8]| deliver(&body(b"1\0", b"2\0", b"\0", b"", 0, t));
        // A TLV header cut short, and a length that runs past the PDU.
        assert_eq!(d(&[0x05, 0x01, 0x00]), ("TLV header", INVOPTPARSTREAM));
        assert_eq!(
            d(&[0x05, 0x01, 0x00, 0x09, 1]),
            ("TLV length", INVOPTPARSTREAM)
        );
        // ussd_service_op is one octet, not two.
        assert_eq!(
            d(&[0x05, 0x01, 0x00, 0x02, 1, 2]),
            ("TLV length", INVPARLEN)
        );
        // receipted_message_id without its NUL.
        assert_eq!(
            d(&[0x00, 0x1E, 0x00, 0x02, b'A', b'B']),
            ("receipted_message_id", INVOPTPARAMVAL)
        );
        // A well-formed vendor TLV passes.
        assert_eq!(d(&[0x14, 0x00, 0x00, 0x01, 7]), ("unknown", RX_P_APPN));
    }

    #[test]
    fn never_panics_on_random_bodies() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..120);
            // Mostly small bytes, so NULs (field ends) and short lengths are common.
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    let b: u8 = rng.gen();
                    if rng.gen_bool(0.5) {
                        b % 4
                    } else {
                        b
                    }
                })
                .collect();
            for id in [DELIVER_SM, DATA_SM] {
                let e = field_error(id, &body);
                assert!(e.status != status::OK, "{body:?}");
            }
        }
    }

    #[test]
    fn a_body_that_ends_inside_the_mandatory_fields_is_a_length_error() {
        assert_eq!(deliver(&[0, 1, 1, b'1']), ("source_addr", INVCMDLEN));
        assert_eq!(deliver(&[]), ("service_type", INVCMDLEN));
        // data_sm allows 65-octet addresses.
        let mut b = vec![0, 1, 1];
        b.extend([b'1'; 40]);
        b.extend([0, 1, 1, b'2', 0, 0, 0, 0]);
        assert_eq!(field_error(DATA_SM, &b).status, RX_P_APPN);
        let mut long = vec![0, 1, 1];
        long.extend([b'1'; 70]);
        long.extend([0, 1, 1, b'2', 0, 0, 0, 0]);
        assert_eq!(field_error(DATA_SM, &long).status, INVSRCADR);
    }
}
