-- The subset of the openIMIS central schema (PostgreSQL form) that imis-gateway mirrors to and
-- pulls from. Written for this project from the documented facts of the openIMIS schema (table
-- and column names, types, sequences, UNIQUE UUIDs, audit column spellings); not copied from
-- openIMIS. Used by the mirror tests and benchmarks, which create it in a throwaway cluster.
--
-- Deliberate fidelity points:
--  * quoted mixed-case identifiers, exactly as openIMIS spells them ("PolicyId" in
--    tblInsureePolicy, "PremiumId" in tblPremium, "AuditUserId" in tblLocations,
--    "AuditedUSerID" in tblPayment, "AuditedUserId" in tblPaymentDetails, "AuditedUserID" in
--    tblControlNumber);
--  * integer keys from named sequences; tblPayment/tblPaymentDetails are bigserial;
--  * UUID columns varchar(36) UNIQUE, except tblPayment."PaymentUUID" which is a real uuid;
--  * FKs DEFERRABLE INITIALLY DEFERRED (tblFamilies and tblInsuree reference each other);
--  * tblFamilySMS column names quoted here (the PG dump leaves them unquoted; Django-created
--    databases have them quoted, which is what the gateway writes to).
--  * the payment tables have no FKs (as in the PG dump).

CREATE SEQUENCE "tblLocations_LocationId_seq";
CREATE TABLE "tblLocations" (
    "LocationId" integer NOT NULL DEFAULT nextval('"tblLocations_LocationId_seq"') PRIMARY KEY,
    "LocationUUID" character varying(36) NOT NULL,
    "LocationCode" character varying(8),
    "LocationName" character varying(50),
    "LocationType" character varying(1) NOT NULL,
    "ParentLocationId" integer,
    "MalePopulation" integer, "FemalePopulation" integer, "OtherPopulation" integer,
    "Families" integer,
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserId" integer,
    "RowId" text,
    CONSTRAINT "tblLocations_LocationUUID_key" UNIQUE ("LocationUUID")
);

CREATE SEQUENCE "tblProduct_ProdID_seq";
CREATE TABLE "tblProduct" (
    "ProdID" integer NOT NULL DEFAULT nextval('"tblProduct_ProdID_seq"') PRIMARY KEY,
    "ProdUUID" character varying(36) NOT NULL,
    "ProductCode" character varying(8) NOT NULL,
    "ProductName" character varying(100) NOT NULL,
    "LocationId" integer REFERENCES "tblLocations" ("LocationId") DEFERRABLE INITIALLY DEFERRED,
    "DateFrom" timestamp with time zone NOT NULL,
    "DateTo" timestamp with time zone NOT NULL,
    "ConversionProdID" integer,
    "InsurancePeriod" smallint NOT NULL,
    "AdministrationPeriod" integer,
    "LumpSum" numeric(18,2) NOT NULL,
    "MemberCount" smallint NOT NULL,
    "Threshold" integer,
    "PremiumAdult" numeric(18,2), "PremiumChild" numeric(18,2),
    "RegistrationLumpSum" numeric(18,2), "RegistrationFee" numeric(18,2),
    "GeneralAssemblyLumpSum" numeric(18,2), "GeneralAssemblyFee" numeric(18,2),
    "StartCycle1" character varying(5), "StartCycle2" character varying(5),
    "StartCycle3" character varying(5), "StartCycle4" character varying(5),
    "GracePeriod" integer NOT NULL,
    "GracePeriodRenewal" integer,
    "WaitingPeriod" integer,
    "MaxInstallments" integer,
    "EnrolmentDiscountPerc" integer, "EnrolmentDiscountPeriod" integer,
    "RenewalDiscountPerc" integer, "RenewalDiscountPeriod" integer,
    "Recurrence" smallint,
    "AccCodePremiums" character varying(25),
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "RowID" bytea,
    CONSTRAINT "tblProduct_ProdUUID_key" UNIQUE ("ProdUUID")
);

CREATE SEQUENCE "tblOfficer_OfficerID_seq";
CREATE TABLE "tblOfficer" (
    "OfficerID" integer NOT NULL DEFAULT nextval('"tblOfficer_OfficerID_seq"') PRIMARY KEY,
    "OfficerUUID" character varying(36) NOT NULL,
    "Code" character varying(8) NOT NULL,
    "LastName" character varying(100) NOT NULL,
    "OtherNames" character varying(100) NOT NULL,
    "DOB" date,
    "Phone" character varying(50),
    "LocationId" integer,
    "OfficerIDSubst" integer,
    "WorksTo" timestamp with time zone,
    "VEOCode" character varying(8), "VEOLastName" character varying(100),
    "VEOOtherNames" character varying(100), "VEODOB" date, "VEOPhone" character varying(25),
    "EmailId" character varying(200),
    "PhoneCommunication" boolean,
    "permanentaddress" character varying(100),
    "HasLogin" boolean,
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "RowID" text,
    CONSTRAINT "tblOfficer_OfficerUUID_key" UNIQUE ("OfficerUUID")
);

CREATE SEQUENCE "tblOfficerVillages_OfficerVillageId_seq";
CREATE TABLE "tblOfficerVillages" (
    "OfficerVillageId" integer NOT NULL
        DEFAULT nextval('"tblOfficerVillages_OfficerVillageId_seq"') PRIMARY KEY,
    "OfficerId" integer,
    "LocationId" integer,
    "ValidityFrom" timestamp with time zone,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer,
    "RowId" text
);

CREATE SEQUENCE "tblFamilies_FamilyID_seq";
CREATE TABLE "tblFamilies" (
    "FamilyID" integer NOT NULL DEFAULT nextval('"tblFamilies_FamilyID_seq"') PRIMARY KEY,
    "FamilyUUID" character varying(36) NOT NULL,
    "InsureeID" integer NOT NULL,
    "LocationId" integer,
    "Poverty" boolean,
    "FamilyType" character varying(2),
    "FamilyAddress" character varying(200),
    "isOffline" boolean,
    "Ethnicity" character varying(1),
    "ConfirmationNo" character varying(12),
    "ConfirmationType" character varying(3),
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "RowID" text,
    "Source" character varying(50), "SourceVersion" character varying(15),
    CONSTRAINT "tblFamilies_FamilyUUID_key" UNIQUE ("FamilyUUID")
);

CREATE TABLE "tblFamilySMS" (
    "FamilyID" integer NOT NULL,
    "ApprovalOfSMS" boolean,
    "LanguageOfSMS" character varying(5),
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    CONSTRAINT "UC_FamilySMS" UNIQUE ("FamilyID", "ValidityTo")
);

CREATE SEQUENCE "tblInsuree_InsureeID_seq";
CREATE TABLE "tblInsuree" (
    "InsureeID" integer NOT NULL DEFAULT nextval('"tblInsuree_InsureeID_seq"') PRIMARY KEY,
    "InsureeUUID" character varying(36) NOT NULL,
    "FamilyID" integer NOT NULL,
    "CHFID" character varying(12),
    "LastName" character varying(100) NOT NULL,
    "OtherNames" character varying(100) NOT NULL,
    "DOB" date NOT NULL,
    "Gender" character varying(1),
    "Marital" character varying(1),
    "IsHead" boolean NOT NULL,
    "passport" character varying(25),
    "Phone" character varying(50),
    "PhotoID" integer, "PhotoDate" date,
    "CardIssued" boolean NOT NULL,
    "Relationship" smallint,
    "Profession" smallint,
    "Education" smallint,
    "Email" character varying(100),
    "isOffline" boolean,
    "TypeOfId" character varying(1),
    "HFID" integer,
    "CurrentAddress" character varying(200),
    "GeoLocation" character varying(250),
    "CurrentVillage" integer,
    "Vulnerability" boolean,
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "RowID" bytea,
    "Source" character varying(50), "SourceVersion" character varying(15),
    CONSTRAINT "tblInsuree_InsureeUUID_key" UNIQUE ("InsureeUUID")
);

ALTER TABLE "tblFamilies" ADD CONSTRAINT "FK_tblFamilies_tblInsuree"
    FOREIGN KEY ("InsureeID") REFERENCES "tblInsuree" ("InsureeID") DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "tblInsuree" ADD CONSTRAINT "FK_tblInsuree_tblFamilies"
    FOREIGN KEY ("FamilyID") REFERENCES "tblFamilies" ("FamilyID") DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "tblFamilies" ADD CONSTRAINT "FK_tblFamilies_tblLocations"
    FOREIGN KEY ("LocationId") REFERENCES "tblLocations" ("LocationId") DEFERRABLE INITIALLY DEFERRED;

CREATE SEQUENCE "tblPolicy_PolicyID_seq";
CREATE TABLE "tblPolicy" (
    "PolicyID" integer NOT NULL DEFAULT nextval('"tblPolicy_PolicyID_seq"') PRIMARY KEY,
    "PolicyUUID" character varying(36) NOT NULL,
    "FamilyID" integer NOT NULL
        REFERENCES "tblFamilies" ("FamilyID") DEFERRABLE INITIALLY DEFERRED,
    "EnrollDate" date NOT NULL,
    "StartDate" date NOT NULL,
    "EffectiveDate" date,
    "ExpiryDate" date,
    "PolicyStatus" smallint,
    "PolicyValue" numeric(18,2),
    "ProdID" integer NOT NULL
        REFERENCES "tblProduct" ("ProdID") DEFERRABLE INITIALLY DEFERRED,
    "OfficerID" integer
        REFERENCES "tblOfficer" ("OfficerID") DEFERRABLE INITIALLY DEFERRED,
    "PolicyStage" character varying(1),
    "isOffline" boolean,
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "RowID" bytea,
    "Source" character varying(50), "SourceVersion" character varying(15),
    CONSTRAINT "tblPolicy_PolicyUUID_key" UNIQUE ("PolicyUUID"),
    -- Real openIMIS enforces status codes in application code; the check lets the tests
    -- provoke a row the database rejects.
    CONSTRAINT "tblPolicy_PolicyStatus_check" CHECK ("PolicyStatus" IN (1, 2, 4, 8, 16))
);

CREATE SEQUENCE "tblInsureePolicy_InsureePolicyID_seq";
CREATE TABLE "tblInsureePolicy" (
    "InsureePolicyID" integer NOT NULL
        DEFAULT nextval('"tblInsureePolicy_InsureePolicyID_seq"') PRIMARY KEY,
    "InsureeID" integer NOT NULL
        REFERENCES "tblInsuree" ("InsureeID") DEFERRABLE INITIALLY DEFERRED,
    "PolicyId" integer NOT NULL
        REFERENCES "tblPolicy" ("PolicyID") DEFERRABLE INITIALLY DEFERRED,
    "EnrollmentDate" date,
    "StartDate" date,
    "EffectiveDate" date,
    "ExpiryDate" date,
    "isOffline" boolean,
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "RowID" bytea
);

CREATE SEQUENCE "tblPremium_PremiumId_seq";
CREATE TABLE "tblPremium" (
    "PremiumId" integer NOT NULL DEFAULT nextval('"tblPremium_PremiumId_seq"') PRIMARY KEY,
    "PremiumUUID" character varying(36) NOT NULL,
    "PolicyID" integer NOT NULL
        REFERENCES "tblPolicy" ("PolicyID") DEFERRABLE INITIALLY DEFERRED,
    "PayerID" integer,
    "Amount" numeric(18,2) NOT NULL,
    "Receipt" character varying(50) NOT NULL,
    "PayDate" date NOT NULL,
    "PayType" character varying(1) NOT NULL,
    "isPhotoFee" boolean,
    "isOffline" boolean,
    "ReportingId" integer,
    "ValidityFrom" timestamp with time zone NOT NULL,
    "ValidityTo" timestamp with time zone,
    "LegacyID" integer,
    "AuditUserID" integer NOT NULL,
    "CreatedDate" date DEFAULT CURRENT_DATE NOT NULL,
    "RowID" text,
    "Source" character varying(50), "SourceVersion" character varying(15),
    CONSTRAINT "tblPremium_PremiumUUID_key" UNIQUE ("PremiumUUID")
);

CREATE TABLE "tblPayment" (
    "PaymentID" bigserial PRIMARY KEY,
    "PaymentUUID" uuid NOT NULL,
    "ExpectedAmount" numeric(18,2),
    "ReceivedAmount" numeric(18,2),
    "OfficerCode" character varying(50),
    "PhoneNumber" character varying(12),
    "RequestDate" timestamp with time zone,
    "ReceivedDate" timestamp with time zone,
    "PaymentStatus" integer,
    "ValidityFrom" timestamp with time zone,
    "ValidityTo" timestamp with time zone,
    "LegacyID" bigint,
    "RowID" timestamp with time zone,
    "AuditedUSerID" integer,
    "TransactionNo" character varying(50),
    "PaymentOrigin" character varying(50),
    "MatchedDate" timestamp with time zone,
    "ReceiptNo" character varying(100),
    "PaymentDate" timestamp with time zone,
    "RejectedReason" character varying(255),
    "DateLastSMS" timestamp with time zone,
    "LanguageName" character varying(10),
    "TypeOfPayment" character varying(50),
    "TransferFee" numeric(18,2),
    "SpReconcReqId" character varying(30),
    "ReconciliationDate" timestamp,
    "PayerPhoneNumber" character varying(50),
    "SmsRequired" bit(1),
    CONSTRAINT "tblPayment_PaymentUUID_key" UNIQUE ("PaymentUUID")
);

CREATE TABLE "tblPaymentDetails" (
    "PaymentDetailsID" bigserial PRIMARY KEY,
    "PaymentID" bigint NOT NULL,
    "ProductCode" character varying(8),
    "InsuranceNumber" character varying(12),
    "PolicyStage" character varying(1),
    "Amount" numeric(18,2),
    "ValidityFrom" timestamp with time zone,
    "ValidityTo" timestamp with time zone,
    "LegacyID" bigint,
    "RowID" timestamp with time zone,
    "PremiumID" integer,
    "AuditedUserId" integer,
    "enrollmentDate" date,
    "ExpectedAmount" numeric(18,2)
);

CREATE SEQUENCE "tblControlNumber_ControlNumberID_seq";
CREATE TABLE "tblControlNumber" (
    "ControlNumberID" bigint NOT NULL
        DEFAULT nextval('"tblControlNumber_ControlNumberID_seq"') PRIMARY KEY,
    "RequestedDate" timestamp with time zone,
    "ReceivedDate" timestamp with time zone,
    "RequestOrigin" character varying(50),
    "ResponseOrigin" character varying(50),
    "Status" integer,
    "ValidityFrom" timestamp with time zone,
    "ValidityTo" timestamp with time zone,
    "LegacyID" bigint,
    "AuditedUserID" integer,
    "PaymentID" bigint,
    "ControlNumber" character varying(50),
    "IssuedDate" timestamp with time zone,
    "Comment" character varying
);
