//! `tblProduct` ↔ [`Product`].

use super::prelude::*;
use super::{cents, count, midnight, money};
use crate::domain::{CycleStart, Discount, Product};

const CODE: Col = Col::new("ProductCode", Ty::Text);
const NAME: Col = Col::new("ProductName", Ty::Text);
const LOCATION: Col = Col::new("LocationId", Ty::I32);
const DATE_FROM: Col = Col::new("DateFrom", Ty::Ts);
const DATE_TO: Col = Col::new("DateTo", Ty::Ts);
const CONVERSION: Col = Col::new("ConversionProdID", Ty::I32);
const INSURANCE_PERIOD: Col = Col::new("InsurancePeriod", Ty::I16);
const ADMINISTRATION_PERIOD: Col = Col::new("AdministrationPeriod", Ty::I32);
const LUMP_SUM: Col = Col::new("LumpSum", Ty::Money);
const MEMBER_COUNT: Col = Col::new("MemberCount", Ty::I16);
const THRESHOLD: Col = Col::new("Threshold", Ty::I32);
const PREMIUM_ADULT: Col = Col::new("PremiumAdult", Ty::Money);
const PREMIUM_CHILD: Col = Col::new("PremiumChild", Ty::Money);
const REGISTRATION_LUMP_SUM: Col = Col::new("RegistrationLumpSum", Ty::Money);
const REGISTRATION_FEE: Col = Col::new("RegistrationFee", Ty::Money);
const ASSEMBLY_LUMP_SUM: Col = Col::new("GeneralAssemblyLumpSum", Ty::Money);
const ASSEMBLY_FEE: Col = Col::new("GeneralAssemblyFee", Ty::Money);
const GRACE_PERIOD: Col = Col::new("GracePeriod", Ty::I32);
const GRACE_PERIOD_RENEWAL: Col = Col::new("GracePeriodRenewal", Ty::I32);
const WAITING_PERIOD: Col = Col::new("WaitingPeriod", Ty::I32);
const MAX_INSTALLMENTS: Col = Col::new("MaxInstallments", Ty::I32);
const ENROLMENT_DISCOUNT: [Col; 2] = [
    Col::new("EnrolmentDiscountPerc", Ty::I32),
    Col::new("EnrolmentDiscountPeriod", Ty::I32),
];
const RENEWAL_DISCOUNT: [Col; 2] = [
    Col::new("RenewalDiscountPerc", Ty::I32),
    Col::new("RenewalDiscountPeriod", Ty::I32),
];
const ACC_CODE_PREMIUMS: Col = Col::new("AccCodePremiums", Ty::Text);
/// The start of each of the (up to four) renewal cycles, `dd-mm`.
const CYCLES: [Col; 4] = [
    Col::new("StartCycle1", Ty::Text),
    Col::new("StartCycle2", Ty::Text),
    Col::new("StartCycle3", Ty::Text),
    Col::new("StartCycle4", Ty::Text),
];

pub const DESC: Desc = Desc {
    kind: "product",
    table: Table {
        name: "tblProduct",
        pk: "ProdID",
        uuid: Some("ProdUUID"),
        uuid_is_uuid_type: false,
        audit: "AuditUserID",
        seq: "tblProduct_ProdID_seq",
        columns: &[
            CODE,
            NAME,
            LOCATION,
            DATE_FROM,
            DATE_TO,
            CONVERSION,
            INSURANCE_PERIOD,
            ADMINISTRATION_PERIOD,
            LUMP_SUM,
            MEMBER_COUNT,
            THRESHOLD,
            PREMIUM_ADULT,
            PREMIUM_CHILD,
            REGISTRATION_LUMP_SUM,
            REGISTRATION_FEE,
            ASSEMBLY_LUMP_SUM,
            ASSEMBLY_FEE,
            GRACE_PERIOD,
            GRACE_PERIOD_RENEWAL,
            WAITING_PERIOD,
            MAX_INSTALLMENTS,
            ENROLMENT_DISCOUNT[0],
            ENROLMENT_DISCOUNT[1],
            RENEWAL_DISCOUNT[0],
            RENEWAL_DISCOUNT[1],
            ACC_CODE_PREMIUMS,
            CYCLES[0],
            CYCLES[1],
            CYCLES[2],
            CYCLES[3],
        ],
        unmapped: &["Recurrence"],
    },
    natural_key: &[],
    pull: Some(Pull::PLAIN),
};

fn cycle(s: Option<String>) -> Option<CycleStart> {
    let s = s?;
    let (d, m) = s.trim().split_once('-')?;
    Some(CycleStart {
        day: d.parse().ok()?,
        month: m.parse().ok()?,
    })
}

fn discount(r: &Named<'_>, cols: [Col; 2]) -> Result<Discount, MirrorError> {
    Ok(Discount {
        perc: u8::try_from(r.count(cols[0])?).unwrap_or(0),
        period_months: r.count(cols[1])?,
    })
}

impl Mapped for Product {
    const DESC: &'static Desc = &DESC;

    fn refs(&self) -> Vec<Ref> {
        let location = self.location.map(|p| ("location", p));
        let conversion = self.conversion.map(|p| ("product", p));
        location.into_iter().chain(conversion).collect()
    }

    fn row(&self, refs: &Refs<'_>) -> Result<Row, MirrorError> {
        let mut row = vec![
            CODE.text(Some(self.code.clone())),
            NAME.text(Some(self.name.clone())),
            LOCATION.int(refs.opt(self.location.map(|p| ("location", p)))?),
            DATE_FROM.ts(midnight(self.sale_from)),
            DATE_TO.ts(midnight(self.sale_to)),
            CONVERSION.int(refs.opt(self.conversion.map(|p| ("product", p)))?),
            INSURANCE_PERIOD.int(count(self.insurance_period_months)),
            ADMINISTRATION_PERIOD.int(count(self.administration_period_months)),
            LUMP_SUM.int(cents(self.lump_sum)),
            MEMBER_COUNT.int(count(self.member_count)),
            THRESHOLD.int(count(self.threshold)),
            PREMIUM_ADULT.int(cents(self.premium_adult)),
            PREMIUM_CHILD.int(cents(self.premium_child)),
            REGISTRATION_LUMP_SUM.int(cents(self.registration_lump_sum)),
            REGISTRATION_FEE.int(cents(self.registration_fee)),
            ASSEMBLY_LUMP_SUM.int(cents(self.assembly_lump_sum)),
            ASSEMBLY_FEE.int(cents(self.assembly_fee)),
            GRACE_PERIOD.int(count(self.grace_period_enrolment_months)),
            GRACE_PERIOD_RENEWAL.int(count(self.grace_period_renewal_months)),
            WAITING_PERIOD.int(count(self.grace_period_payment_months)),
            MAX_INSTALLMENTS.int(count(self.max_installments)),
        ];
        for (cols, d) in [
            (ENROLMENT_DISCOUNT, self.enrolment_discount),
            (RENEWAL_DISCOUNT, self.renewal_discount),
        ] {
            row.push(cols[0].int(count(u32::from(d.perc))));
            row.push(cols[1].int(count(d.period_months)));
        }
        row.push(ACC_CODE_PREMIUMS.text(self.sp_code.clone()));
        for (i, col) in CYCLES.into_iter().enumerate() {
            let c = self
                .cycles
                .get(i)
                .map(|c| format!("{:02}-{:02}", c.day, c.month));
            row.push(col.text(c));
        }
        Ok(row)
    }

    fn read(r: &Named<'_>, ids: &mut LocalIds<'_>) -> Result<Option<Self>, MirrorError> {
        let id = ids.get(DESC.kind, r.key)?;
        let from = r.required(DATE_FROM, r.ts(DATE_FROM)?)?;
        let to = r.required(DATE_TO, r.ts(DATE_TO)?)?;
        let mut cycles = Vec::new();
        for c in CYCLES {
            cycles.extend(cycle(r.text(c)?));
        }
        Ok(Some(Product {
            id,
            uuid: r.uuid()?,
            code: r.required(CODE, r.text(CODE)?)?,
            name: r.required(NAME, r.text(NAME)?)?,
            location: ids.opt("location", r.int(LOCATION)?)?,
            sale_from: from.date_naive(),
            sale_to: to.date_naive(),
            conversion: ids.opt("product", r.int(CONVERSION)?)?,
            insurance_period_months: r.count(INSURANCE_PERIOD)?,
            administration_period_months: r.count(ADMINISTRATION_PERIOD)?,
            lump_sum: money(r.int(LUMP_SUM)?),
            member_count: r.count(MEMBER_COUNT)?,
            threshold: r.count(THRESHOLD)?,
            premium_adult: money(r.int(PREMIUM_ADULT)?),
            premium_child: money(r.int(PREMIUM_CHILD)?),
            registration_lump_sum: money(r.int(REGISTRATION_LUMP_SUM)?),
            registration_fee: money(r.int(REGISTRATION_FEE)?),
            assembly_lump_sum: money(r.int(ASSEMBLY_LUMP_SUM)?),
            assembly_fee: money(r.int(ASSEMBLY_FEE)?),
            cycles,
            grace_period_enrolment_months: r.count(GRACE_PERIOD)?,
            grace_period_renewal_months: r.count(GRACE_PERIOD_RENEWAL)?,
            grace_period_payment_months: r.count(WAITING_PERIOD)?,
            max_installments: r.count(MAX_INSTALLMENTS)?,
            enrolment_discount: discount(r, ENROLMENT_DISCOUNT)?,
            renewal_discount: discount(r, RENEWAL_DISCOUNT)?,
            sp_code: r.text(ACC_CODE_PREMIUMS)?,
        }))
    }
}
