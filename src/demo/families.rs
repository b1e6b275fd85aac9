//! The demo world's families: the named ones the README lists and the generated ones, with
//! their members, policies, premiums and payment intents.

use super::*;

impl World<'_> {
    fn chf01(&self) -> Result<Product, DemoError> {
        self.chf01
            .clone()
            .ok_or_else(|| DemoError::Rule("CHF01 not written yet".into()))
    }

    pub(super) fn named_families(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let today = self.options.today;
        let product = self.chf01()?;
        let chfid = |s: &str| Chfid::parse(s).map_err(|e| DemoError::Rule(e.to_string()));

        // Active, about eight months left.
        let head = self.member(
            chfid(ACTIVE_CHFID)?,
            "Hamisi",
            "Juma",
            Gender::Male,
            None,
            Some("255754100001"),
        )?;
        let mut members = vec![head];
        members.extend(self.dependants(3, "Hamisi")?);
        let family = self.family(bulk, members, Language::Sw, true)?;
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(120),
            PolicyStage::New,
            Paid::Full,
        )?;

        // Expired about a month ago, never renewed.
        let head = self.member(
            chfid(EXPIRED_CHFID)?,
            "Mushi",
            "Neema",
            Gender::Female,
            None,
            Some("255754100002"),
        )?;
        let mut members = vec![head];
        members.extend(self.dependants(2, "Mushi")?);
        let family = self.family(bulk, members, Language::En, true)?;
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(400),
            PolicyStage::New,
            Paid::Full,
        )?;

        // Expired two weeks ago; renewed two days ago but not yet paid.
        let head = self.member(
            chfid(IDLE_RENEWAL_CHFID)?,
            "Kimaro",
            "Baraka",
            Gender::Male,
            None,
            Some("255754100003"),
        )?;
        let mut members = vec![head];
        members.extend(self.dependants(4, "Kimaro")?);
        let family = self.family(bulk, members, Language::Sw, true)?;
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(380),
            PolicyStage::New,
            Paid::Full,
        )?;
        let renewal = self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(2),
            PolicyStage::Renewal,
            Paid::Nothing,
        )?;
        self.payment_intent(
            bulk,
            &family,
            &product,
            &renewal,
            IDLE_RENEWAL_CONTROL_NUMBER,
        )?;
        Ok(())
    }

    pub(super) fn generated_family(&mut self, bulk: &mut BulkWriter) -> Result<(), DemoError> {
        let today = self.options.today;
        let product = self.chf01()?;
        let last = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&"Mwakyusa");
        let gender = if self.rng.gen_bool(0.5) {
            Gender::Male
        } else {
            Gender::Female
        };
        let first = self.first_name(gender);
        let chfid = self.next_chfid()?;
        let phone = format!("2557{:08}", self.rng.gen_range(10_000_000..99_999_999u32));
        let head = self.member(chfid, last, first, gender, None, Some(&phone))?;
        let dependants = self.rng.gen_range(0..=6);
        let mut members = vec![head];
        members.extend(self.dependants(dependants, last)?);
        let language = if self.rng.gen_bool(0.8) {
            Language::Sw
        } else {
            Language::En
        };
        let approved = self.rng.gen_bool(0.85);
        let family = self.family(bulk, members, language, approved)?;
        // A mix that exercises every journey: mostly active, some lapsed, some unpaid, and a
        // share expiring within the renewal-prompt window.
        let roll: f64 = self.rng.gen();
        let (days_ago, paid) = if roll < 0.55 {
            (self.rng.gen_range(14..330), Paid::Full)
        } else if roll < 0.70 {
            (self.rng.gen_range(352..365), Paid::Full)
        } else if roll < 0.85 {
            (self.rng.gen_range(366..700), Paid::Full)
        } else if roll < 0.95 {
            (self.rng.gen_range(0..60), Paid::Nothing)
        } else {
            (self.rng.gen_range(14..200), Paid::Part)
        };
        self.policy(
            bulk,
            &family,
            &product,
            today - Duration::days(days_ago),
            PolicyStage::New,
            paid,
        )?;
        Ok(())
    }

    fn first_name(&mut self, gender: Gender) -> &'static str {
        let names = if gender == Gender::Female {
            FEMALE_NAMES
        } else {
            MALE_NAMES
        };
        names.choose(&mut self.rng).copied().unwrap_or("Juma")
    }

    fn next_chfid(&mut self) -> Result<Chfid, DemoError> {
        let c = Chfid::from_base(self.next_generated)
            .ok_or_else(|| DemoError::Rule("generated CHFIDs exhausted".into()))?;
        self.next_generated += 1;
        Ok(c)
    }

    fn member(
        &mut self,
        chfid: Chfid,
        last: &str,
        other: &str,
        gender: Gender,
        relationship: Option<Relationship>,
        phone: Option<&str>,
    ) -> Result<NewMember, DemoError> {
        let adult = relationship.is_none() || relationship == Some(Relationship::Spouse);
        let age_days = if adult {
            self.rng.gen_range(20 * 365..70 * 365)
        } else {
            self.rng.gen_range(30..17 * 365)
        };
        let phone = match phone {
            Some(p) => Some(Msisdn::parse(p).map_err(|e| DemoError::Rule(e.to_string()))?),
            None => None,
        };
        Ok(NewMember {
            chfid,
            last_name: last.into(),
            other_names: other.into(),
            dob: self.options.today - Duration::days(age_days),
            gender,
            relationship,
            phone,
        })
    }

    fn dependants(&mut self, n: usize, last: &str) -> Result<Vec<NewMember>, DemoError> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let gender = if self.rng.gen_bool(0.5) {
                Gender::Male
            } else {
                Gender::Female
            };
            let relationship = if i == 0 {
                Relationship::Spouse
            } else {
                Relationship::Child
            };
            let first = self.first_name(gender);
            let chfid = self.next_chfid()?;
            out.push(self.member(chfid, last, first, gender, Some(relationship), None)?);
        }
        Ok(out)
    }

    /// Writes the family and its members (the first is the head).
    fn family(
        &mut self,
        bulk: &mut BulkWriter,
        members: Vec<NewMember>,
        language: Language,
        approved: bool,
    ) -> Result<FamilyRecord, DemoError> {
        let family_id = self.id()?;
        let village = *self
            .villages
            .choose(&mut self.rng)
            .ok_or_else(|| DemoError::Rule("no villages".into()))?;
        let mut insurees = Vec::with_capacity(members.len());
        for (i, m) in members.into_iter().enumerate() {
            let insuree = Insuree {
                id: self.id()?,
                uuid: self.uuid(),
                chfid: m.chfid,
                family: family_id,
                is_head: i == 0,
                last_name: m.last_name,
                other_names: m.other_names,
                dob: m.dob,
                gender: m.gender,
                relationship: m.relationship,
                phone: m.phone,
                card_issued: true,
            };
            bulk.put_insuree(&insuree)?;
            insurees.push(insuree);
        }
        let head = insurees
            .first()
            .map(|h| h.id)
            .ok_or_else(|| DemoError::Rule("family without a head".into()))?;
        let family = Family {
            id: family_id,
            uuid: self.uuid(),
            head,
            village,
            poverty: self.rng.gen_bool(0.1),
            sms: SmsPreference { approved, language },
        };
        bulk.put_family(&family)?;
        self.summary.families += 1;
        self.summary.insurees += insurees.len() as u64;
        Ok(FamilyRecord { family, insurees })
    }

    fn policy(
        &mut self,
        bulk: &mut BulkWriter,
        family: &FamilyRecord,
        product: &Product,
        enroll: NaiveDate,
        stage: PolicyStage,
        paid: Paid,
    ) -> Result<Policy, DemoError> {
        let today = self.options.today;
        let period =
            policy_period(product, enroll, stage).map_err(|e| DemoError::Rule(e.to_string()))?;
        let members: Vec<MemberForValue> = family
            .insurees
            .iter()
            .map(|i| MemberForValue {
                dob: i.dob,
                relationship: i.relationship,
            })
            .collect();
        let value = policy_value(product, &members, stage, enroll, period.start, None);
        let pay_date = enroll + Duration::days(self.rng.gen_range(0..10));
        let effective = match paid {
            Paid::Full => Some(period.start.max(pay_date)),
            Paid::Part | Paid::Nothing => None,
        };
        let status = match (effective, period.expiry < today) {
            (Some(_), true) => PolicyStatus::Expired,
            (Some(_), false) => PolicyStatus::Active,
            (None, _) => PolicyStatus::Idle,
        };
        let officer = self.officers.first().copied();
        let policy = Policy {
            id: self.id()?,
            uuid: self.uuid(),
            family: family.family.id,
            product: product.id,
            officer,
            stage,
            status,
            value,
            enroll_date: enroll,
            start_date: period.start,
            effective_date: effective,
            expiry_date: period.expiry,
            self_renewed: false,
        };
        bulk.put_policy(&policy)?;
        for insuree in &family.insurees {
            let ip = InsureePolicy {
                id: self.id()?,
                insuree: insuree.id,
                policy: policy.id,
                enrollment_date: enroll,
                start_date: period.start,
                effective_date: effective,
                expiry_date: period.expiry,
            };
            bulk.put_insuree_policy(&ip)?;
        }
        let amount = match paid {
            Paid::Full => Some(value),
            Paid::Part => Some(Money(value.cents() / 2)),
            Paid::Nothing => None,
        };
        if let Some(amount) = amount {
            let premium = Premium {
                id: self.id()?,
                uuid: self.uuid(),
                policy: policy.id,
                amount,
                receipt: format!(
                    "RE-{}-{}-{:05}",
                    product.code,
                    enroll.format("%Y%m%d"),
                    policy.id % 100_000
                ),
                pay_date,
                pay_type: PayType::Mobile,
                is_photo_fee: false,
            };
            bulk.put_premium(&premium)?;
            self.summary.premiums += 1;
        }
        self.summary.policies += 1;
        Ok(policy)
    }

    fn payment_intent(
        &mut self,
        bulk: &mut BulkWriter,
        family: &FamilyRecord,
        product: &Product,
        policy: &Policy,
        control_number: &str,
    ) -> Result<(), DemoError> {
        let head = family
            .insurees
            .first()
            .ok_or_else(|| DemoError::Rule("family without a head".into()))?;
        let requested = self
            .options
            .today
            .and_hms_opt(9, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| DemoError::Rule("bad time".into()))?;
        let (id, uuid) = (self.id()?, self.uuid());
        let line = PaymentDetail {
            product_code: product.code.clone(),
            chfid: head.chfid,
            stage: PolicyStage::Renewal,
            policy: Some(policy.id),
            expected_amount: policy.value,
            amount: None,
            premium: None,
        };
        let mut payment = Payment::intent(
            id,
            uuid,
            line,
            head.phone.clone(),
            family.family.sms.language,
            requested,
        );
        payment.status = PaymentStatus::Assigned;
        payment.control_number = Some(control_number.into());
        bulk.put_payment(&payment)?;
        let cn = ControlNumber {
            id: self.id()?,
            number: control_number.into(),
            status: ControlNumberStatus::Assigned,
            payment: Some(payment.id),
            product: Some(product.id),
            requested_date: requested,
            received_date: Some(requested),
        };
        bulk.put_control_number(&cn)?;
        Ok(())
    }
}

struct FamilyRecord {
    family: Family,
    insurees: Vec<Insuree>,
}

#[derive(Clone, Copy)]
enum Paid {
    Full,
    Part,
    Nothing,
}
