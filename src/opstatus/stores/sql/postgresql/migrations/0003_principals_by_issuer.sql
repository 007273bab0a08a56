-- 0003: role assignments name their principal by issuer, claim and id (schema version 3).
--
-- An id alone named a principal of any configured identity provider, and a token's 'sub'
-- could stand for someone else's 'oid'. Assignments made before this name no issuer (''):
-- a server with one issuer gives them to it on start-up; with several they grant nothing
-- until assigned again with --issuer. Their id was the 'oid' the README asked for.
ALTER TABLE opstatus_role_assignments RENAME TO opstatus_role_assignments_0002;
ALTER TABLE opstatus_role_assignments_0002
    RENAME CONSTRAINT opstatus_role_assignments_pkey TO opstatus_role_assignments_0002_pkey;
CREATE TABLE opstatus_role_assignments (
    issuer              text NOT NULL,
    principal_claim     text NOT NULL,
    principal_id        text NOT NULL,
    role                text NOT NULL,
    scope               text NOT NULL,
    created_at          text NOT NULL,
    CONSTRAINT opstatus_role_assignments_claim CHECK (principal_claim IN ('oid', 'sub')),
    PRIMARY KEY (issuer, principal_claim, principal_id, scope, role)
);
INSERT INTO opstatus_role_assignments
    (issuer, principal_claim, principal_id, role, scope, created_at)
    SELECT '', 'oid', principal_id, role, scope, created_at FROM opstatus_role_assignments_0002;
DROP TABLE opstatus_role_assignments_0002;
