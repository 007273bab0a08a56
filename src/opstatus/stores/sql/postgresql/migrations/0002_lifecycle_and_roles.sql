-- 0002: role assignments, list and sweep indexes, and tombstones (schema version 2).

-- Role assignments for principals of external identity providers (opstatus role assign).
CREATE TABLE opstatus_role_assignments (
    principal_id        text NOT NULL,
    role                text NOT NULL,
    scope               text NOT NULL,
    created_at          text NOT NULL,
    PRIMARY KEY (principal_id, scope, role)
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
