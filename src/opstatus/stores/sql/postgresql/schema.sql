-- The opstatus schema for PostgreSQL, as of the latest migration.
--
-- `opstatus migrate` applies this file to a database that has no opstatus schema yet and
-- records every migration as applied; a database made earlier gets the numbered files in
-- migrations/ it has not had yet. tests/stores/test_migrations.py checks that both roads end
-- in the same schema, so a change here always comes with a new migration (and the other way
-- round). The migration bookkeeping table (opstatus_schema_migrations) belongs to the
-- migrator, not to this file.
--
-- Columns are those of the SQLite table, one per Operation field. Times are text in the
-- model's one format (ISO 8601, UTC, milliseconds, 'Z'), which sorts as time does; JSON is
-- text, so a producer's key order and numbers come back exactly as they were sent.

CREATE TABLE opstatus_operations (
    subscription_id     text NOT NULL,
    operation_key       text NOT NULL,
    operation_id        text NOT NULL,
    namespace           text NOT NULL,
    location            text NOT NULL,
    status              text NOT NULL,
    start_time          text,
    end_time            text,
    percent_complete    double precision,
    properties          text,
    error               text,
    etag                text NOT NULL,
    created_at          text NOT NULL,
    updated_at          text NOT NULL,
    create_digest       text NOT NULL,
    http_status_code    integer,
    kind                text,
    cancelable          boolean NOT NULL DEFAULT true,
    cancel_requested_at text,
    lease_seconds       double precision,
    lease_expires_at    text,
    expires_at          text,
    PRIMARY KEY (subscription_id, operation_key)
);

-- Role assignments for principals of external identity providers (opstatus role assign),
-- named by issuer, claim ('oid', or 'sub' for a token without one) and id.
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
-- Lists: newest first within a subscription (keyset paging).
CREATE INDEX opstatus_operations_by_created
    ON opstatus_operations (subscription_id, created_at, operation_key);
-- The background sweeps: retention over, leases lapsed.
CREATE INDEX opstatus_operations_by_expiry
    ON opstatus_operations (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX opstatus_operations_by_lease
    ON opstatus_operations (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX opstatus_operations_by_subscription_lease
    ON opstatus_operations (subscription_id, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
-- What is left of removed operations, so that reads can say "expired".
CREATE TABLE opstatus_tombstones (
    subscription_id     text NOT NULL,
    operation_key       text NOT NULL,
    operation_id        text NOT NULL,
    namespace           text NOT NULL,
    location            text NOT NULL,
    status              text NOT NULL,
    end_time            text,
    expired_at          text NOT NULL,
    reason              text NOT NULL,
    forget_at           text NOT NULL,
    PRIMARY KEY (subscription_id, operation_key)
);
CREATE INDEX opstatus_tombstones_by_forget_at ON opstatus_tombstones (forget_at);
