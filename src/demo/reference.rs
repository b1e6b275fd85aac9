//! The demo world's fixed reference data: the Dodoma location tree, the three products and
//! the officers.

use super::*;

impl World<'_> {
    pub(super) fn locations(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let region = Location {
            id: self.id()?,
            uuid: self.uuid(),
            code: "R01".into(),
            name: "Dodoma".into(),
            kind: LocationKind::Region,
            parent: None,
        };
        bulk.put_location(&region)?;
        for (d, district_name) in ["Kongwa", "Mpwapwa"].iter().enumerate() {
            let district = Location {
                id: self.id()?,
                uuid: self.uuid(),
                code: format!("D0{}", d + 1),
                name: (*district_name).into(),
                kind: LocationKind::District,
                parent: Some(region.id),
            };
            bulk.put_location(&district)?;
            for w in 0..2 {
                let ward = Location {
                    id: self.id()?,
                    uuid: self.uuid(),
                    code: format!("W0{}{}", d + 1, w + 1),
                    name: format!("{district_name} Kata {}", w + 1),
                    kind: LocationKind::Ward,
                    parent: Some(district.id),
                };
                bulk.put_location(&ward)?;
                for v in 0..3 {
                    let village = Location {
                        id: self.id()?,
                        uuid: self.uuid(),
                        code: format!("V0{}{}{}", d + 1, w + 1, v + 1),
                        name: format!("{district_name} Kijiji {}", w * 3 + v + 1),
                        kind: LocationKind::Village,
                        parent: Some(ward.id),
                    };
                    bulk.put_location(&village)?;
                    self.villages.push(village.id);
                }
            }
        }
        Ok(())
    }

    pub(super) fn products(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let date = |y, m, d| {
            NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| DemoError::Rule("bad date".into()))
        };
        let chf01 = Product {
            grace_period_payment_months: 3,
            lump_sum: Money::tzs(30_000),
            member_count: 10,
            threshold: 6,
            premium_adult: Money::tzs(5_000),
            premium_child: Money::tzs(5_000),
            max_installments: 3,
            sp_code: Some("SP111".into()),
            ..Product::free(
                self.id()?,
                self.uuid(),
                "CHF01",
                "CHF Iliyoboreshwa",
                date(2019, 1, 1)?,
                date(2035, 12, 31)?,
            )
        };
        let cycle = Product {
            id: self.id()?,
            uuid: self.uuid(),
            code: "CHFC1".into(),
            name: "CHF Mzunguko".into(),
            cycles: vec![
                CycleStart { day: 1, month: 1 },
                CycleStart { day: 1, month: 7 },
            ],
            grace_period_enrolment_months: 1,
            grace_period_renewal_months: 1,
            lump_sum: Money::tzs(20_000),
            registration_lump_sum: Money::tzs(2_000),
            enrolment_discount: Discount {
                perc: 10,
                period_months: 1,
            },
            sp_code: Some("SP112".into()),
            ..chf01.clone()
        };
        let legacy = Product {
            id: self.id()?,
            uuid: self.uuid(),
            code: "CHF00".into(),
            name: "CHF (zamani)".into(),
            sale_from: date(2015, 1, 1)?,
            sale_to: date(2022, 12, 31)?,
            conversion: Some(chf01.id),
            lump_sum: Money::tzs(10_000),
            sp_code: None,
            ..chf01.clone()
        };
        for p in [&chf01, &cycle, &legacy] {
            bulk.put_product(p)?;
        }
        self.chf01 = Some(chf01);
        Ok(())
    }

    pub(super) fn officers(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let salt: [u8; 16] = self.rng.gen();
        // One hash for every demo officer: Argon2 is slow on purpose, and they share the PIN.
        let pin_hash =
            pin::hash(DEMO_OFFICER_PIN, salt).map_err(|e| DemoError::Rule(e.to_string()))?;
        let (kongwa, mpwapwa) = self.villages.split_at(self.villages.len() / 2);
        let (kongwa, mpwapwa) = (kongwa.to_vec(), mpwapwa.to_vec());
        let first = self.id()?;
        let specs: [OfficerSpec; 3] = [
            (
                DEMO_OFFICER_CODE,
                "Mwakyusa",
                "Amina",
                DEMO_OFFICER_PHONE,
                kongwa,
                None,
                None,
            ),
            (
                "EO0002",
                "Lyimo",
                "Petro",
                "255754000002",
                mpwapwa.clone(),
                None,
                None,
            ),
            // Left the scheme last month: its families fall to EO0001 as substitute.
            (
                "EO0003",
                "Swai",
                "Zawadi",
                "255754000003",
                mpwapwa,
                Some(self.options.today - Duration::days(30)),
                Some(first),
            ),
        ];
        for (i, (code, last, other, phone, villages, works_to, substitute)) in
            specs.into_iter().enumerate()
        {
            let id = if i == 0 { first } else { self.id()? };
            let officer = Officer {
                id,
                uuid: self.uuid(),
                code: code.into(),
                last_name: last.into(),
                other_names: other.into(),
                phone: Some(Msisdn::parse(phone).map_err(|e| DemoError::Rule(e.to_string()))?),
                district: None,
                villages,
                substitute,
                works_to,
                phone_communication: true,
                language: Language::Sw,
                pin_hash: Some(pin_hash.clone()),
            };
            bulk.put_officer(&officer)?;
            self.officers.push(officer.id);
        }
        Ok(())
    }
}

/// Code, last name, other names, phone, villages, works-to, substitute.
type OfficerSpec<'s> = (
    &'s str,
    &'s str,
    &'s str,
    &'s str,
    Vec<Id>,
    Option<NaiveDate>,
    Option<Id>,
);
