//! The outbound SMS record and how a business write enqueues it.

use serde::{Deserialize, Serialize};

use crate::domain::{Language, Msisdn};
use crate::store::codec;
use crate::store::{StoreError, TxError, WriteTx};

/// Outbox topic of SMS waiting for the SMSC.
pub const SMS_TOPIC: &str = "sms";

/// One SMS we owe someone. The text is rendered when enqueued, so a template edited later
/// never changes a message already owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundSms {
    pub to: Msisdn,
    pub text: String,
    /// Template name, for reports and delivery statistics.
    pub template: String,
    pub language: Language,
    /// Correlation id of the business event (payment id, session id, MO id...).
    pub reference: String,
}

/// Puts `sms` on the outbox inside the caller's transaction. `idempotency_key` must name the
/// business event and the template (for example `payment:42:paid`), so that a retried or
/// replayed write never owes the same SMS twice. Returns the outbox sequence number.
pub fn enqueue(
    tx: &mut WriteTx<'_>,
    idempotency_key: &str,
    sms: &OutboundSms,
) -> Result<u64, TxError> {
    let payload = codec::encode(sms).map_err(|source| {
        TxError::from(StoreError::Codec {
            tree: "outbox",
            source,
        })
    })?;
    tx.outbox_push(SMS_TOPIC, idempotency_key, &payload)
}

/// Decodes an outbox payload written by [`enqueue`].
pub fn decode(payload: &[u8]) -> Result<OutboundSms, codec::CodecError> {
    codec::decode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, TxResult};
    use chrono::Utc;
    use std::time::Duration;

    fn sms(text: &str) -> OutboundSms {
        OutboundSms {
            to: Msisdn::parse("0754100001").unwrap(),
            text: text.into(),
            template: "test".into(),
            language: Language::Sw,
            reference: "ref-1".into(),
        }
    }

    #[test]
    fn the_same_event_owes_one_sms() {
        let store = Store::open_temporary().unwrap();
        for _ in 0..3 {
            store
                .write(|tx| -> TxResult<()> {
                    enqueue(tx, "payment:1:paid", &sms("Asante"))?;
                    Ok(())
                })
                .unwrap();
        }
        store
            .write(|tx| -> TxResult<()> {
                enqueue(tx, "payment:2:paid", &sms("Asante tena"))?;
                Ok(())
            })
            .unwrap();
        let claimed = store
            .claim(SMS_TOPIC, 10, Duration::from_secs(30), Utc::now())
            .unwrap();
        let texts: Vec<String> = claimed
            .iter()
            .map(|i| decode(&i.payload).unwrap().text)
            .collect();
        assert_eq!(texts, vec!["Asante", "Asante tena"]);
    }
}
