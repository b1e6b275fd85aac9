//! `tblLocations` ↔ [`Location`].

use super::prelude::*;
use crate::domain::{Location, LocationKind};

const CODE: Col = Col::new("LocationCode", Ty::Text);
const NAME: Col = Col::new("LocationName", Ty::Text);
const TYPE: Col = Col::new("LocationType", Ty::Text);
const PARENT: Col = Col::new("ParentLocationId", Ty::I32);

pub const DESC: Desc = Desc {
    kind: "location",
    table: Table {
        name: "tblLocations",
        pk: "LocationId",
        uuid: Some("LocationUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserId",
        seq: "tblLocations_LocationId_seq",
        columns: &[CODE, NAME, TYPE, PARENT],
        unmapped: &[
            "MalePopulation",
            "FemalePopulation",
            "OtherPopulation",
            "Families",
        ],
    },
    natural_key: &[],
    pull: Some(Pull::PLAIN),
};

const KINDS: [LocationKind; 4] = [
    LocationKind::Region,
    LocationKind::District,
    LocationKind::Ward,
    LocationKind::Village,
];

impl Mapped for Location {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        self.parent.map(|p| ("location", p)).into_iter().collect()
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        Ok(vec![
            CODE.text(Some(self.code.clone())),
            NAME.text(Some(self.name.clone())),
            TYPE.text(Some(self.kind.code().to_string())),
            PARENT.int(refs.opt(self.parent.map(|p| ("location", p)))?),
        ])
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        Ok(Some(Location {
            id: ids.get(DESC.kind, r.key)?,
            uuid: r.uuid()?,
            code: r.text(CODE)?.unwrap_or_default(),
            name: r.text(NAME)?.unwrap_or_default(),
            kind: r.one_of(TYPE, &KINDS, LocationKind::code)?,
            parent: ids.opt("location", r.int(PARENT)?)?,
        }))
    }
}
