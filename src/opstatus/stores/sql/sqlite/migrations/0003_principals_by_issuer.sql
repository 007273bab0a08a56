-- 0003: role assignments name their principal by issuer, claim and id (schema version 3).
--
-- An id alone named a principal of any configured identity provider, and a token's 'sub'
-- could stand for someone else's 'oid'. Assignments made before this name no issuer (''):
-- a server with one issuer gives them to it on start-up; with several they grant nothing
-- until assigned again with --issuer. Their id was the 'oid' the README asked for.
ALTER TABLE role_assignments RENAME TO role_assignments_0002;
CREATE TABLE role_assignments (
    issuer              TEXT NOT NULL,
    principal_claim     TEXT NOT NULL CHECK (principal_claim IN ('oid', 'sub')),
    principal_id        TEXT NOT NULL,
    role                TEXT NOT NULL,
    scope               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (issuer, principal_claim, principal_id, scope, role)
) WITHOUT ROWID;
INSERT INTO role_assignments (issuer, principal_claim, principal_id, role, scope, created_at)
    SELECT '', 'oid', principal_id, role, scope, created_at FROM role_assignments_0002;
DROP TABLE role_assignments_0002;
