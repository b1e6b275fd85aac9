//! Store records as tests write them by hand, with the values no test looks at.
#![allow(dead_code)]

use imis_gateway::domain::{Chfid, Family, Id, Insuree, Language};
use imis_gateway::store::{Store, TxResult};

/// A family (not poor) whose head gets SMS, in Kiswahili.
pub fn family(id: Id, head: Id, village: Id) -> Family {
    Family::new(id, head, village, Language::Sw)
}

/// Renumbers the first members (not the head) of `head`'s family with `chfids`, as an import
/// of central data stores them: taken as they are, whatever the typed-number rule says (the
/// openIMIS demo database has 8-digit numbers and wrong check digits). Returns the members
/// as renumbered, in the order of `chfids`.
pub fn central_chfids(store: &Store, head: &str, chfids: &[&str]) -> Vec<Insuree> {
    let head = store
        .insuree_by_chfid(Chfid::parse(head).unwrap())
        .unwrap()
        .unwrap_or_else(|| panic!("no member {head}"));
    let members: Vec<Insuree> = store
        .family_members(head.family)
        .unwrap()
        .into_iter()
        .filter(|m| !m.is_head)
        .zip(chfids)
        .map(|(mut m, c)| {
            m.chfid = Chfid::from_central(c).unwrap();
            m
        })
        .collect();
    assert_eq!(
        members.len(),
        chfids.len(),
        "the family has too few members"
    );
    store
        .write(|tx| -> TxResult<()> {
            for m in &members {
                tx.put_insuree(m)?;
            }
            Ok(())
        })
        .unwrap();
    store.flush().unwrap();
    members
}
