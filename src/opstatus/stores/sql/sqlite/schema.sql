-- The opstatus schema for SQLite, as of the latest migration.
--
-- A new database gets this file, then PRAGMA user_version is set to the latest migration's
-- number; an older database gets the numbered files in migrations/ it has not had yet.
-- tests/stores/test_migrations.py checks that both roads end in the same schema, so a change
-- here always comes with a new migration (and the other way round).

CREATE TABLE operations (
    subscription_id     TEXT NOT NULL,
    operation_key       TEXT NOT NULL,
    operation_id        TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    location            TEXT NOT NULL,
    status              TEXT NOT NULL,
    start_time          TEXT,
    end_time            TEXT,
    percent_complete    REAL,
    properties          TEXT,
    error               TEXT,
    etag                TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    create_digest       TEXT NOT NULL,
    http_status_code    INTEGER,
    kind                TEXT,
    cancelable          INTEGER NOT NULL DEFAULT 1,
    cancel_requested_at TEXT,
    lease_seconds       REAL,
    lease_expires_at    TEXT,
    expires_at          TEXT,
    PRIMARY KEY (subscription_id, operation_key)
) WITHOUT ROWID;

-- Role assignments for principals of external identity providers (opstatus role assign),
-- named by issuer, claim ('oid', or 'sub' for a token without one) and id.
CREATE TABLE role_assignments (
    issuer              TEXT NOT NULL,
    principal_claim     TEXT NOT NULL CHECK (principal_claim IN ('oid', 'sub')),
    principal_id        TEXT NOT NULL,
    role                TEXT NOT NULL,
    scope               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (issuer, principal_claim, principal_id, scope, role)
) WITHOUT ROWID;
-- Lists: newest first within a subscription (keyset paging).
CREATE INDEX IF NOT EXISTS operations_by_created
    ON operations (subscription_id, created_at, operation_key);
-- The background sweeps: retention over, leases lapsed.
CREATE INDEX IF NOT EXISTS operations_by_expiry
    ON operations (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS operations_by_lease
    ON operations (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
-- Before a list answers, the lapsed leases in its subscription.
CREATE INDEX IF NOT EXISTS operations_by_subscription_lease
    ON operations (subscription_id, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
-- How many operations each (subscription, provider, location, status) holds: every row of
-- operations, counted by the triggers below as it is inserted, changed or deleted, so that
-- counting costs the number of groups, not of operations. Groups that fall to zero stay
-- (with count 0) and are left out when read.
CREATE TABLE IF NOT EXISTS operation_tallies (
    subscription_id     TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    location            TEXT NOT NULL,
    status              TEXT NOT NULL,
    count               INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, namespace, location, status)
) WITHOUT ROWID;
CREATE TRIGGER operations_tally_insert AFTER INSERT ON operations BEGIN
    INSERT INTO operation_tallies (subscription_id, namespace, location, status, count)
        VALUES (NEW.subscription_id, NEW.namespace, NEW.location, NEW.status, 1)
        ON CONFLICT (subscription_id, namespace, location, status)
        DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER operations_tally_delete AFTER DELETE ON operations BEGIN
    UPDATE operation_tallies SET count = count - 1
        WHERE subscription_id = OLD.subscription_id AND namespace = OLD.namespace
        AND location = OLD.location AND status = OLD.status;
END;
CREATE TRIGGER operations_tally_update AFTER UPDATE OF status, namespace, location ON operations
    WHEN OLD.status IS NOT NEW.status OR OLD.namespace IS NOT NEW.namespace
        OR OLD.location IS NOT NEW.location
BEGIN
    UPDATE operation_tallies SET count = count - 1
        WHERE subscription_id = OLD.subscription_id AND namespace = OLD.namespace
        AND location = OLD.location AND status = OLD.status;
    INSERT INTO operation_tallies (subscription_id, namespace, location, status, count)
        VALUES (NEW.subscription_id, NEW.namespace, NEW.location, NEW.status, 1)
        ON CONFLICT (subscription_id, namespace, location, status)
        DO UPDATE SET count = count + 1;
END;

-- A provider's or a location's list, newest first (on PostgreSQL, also the statistics of
-- lower(namespace) its planner needs).
CREATE INDEX operations_by_scope
    ON operations (subscription_id, lower(namespace), location, created_at, operation_key);
-- Lists by status, newest first ("running now"), and by end time ("recent failures").
CREATE INDEX operations_by_status_created
    ON operations (subscription_id, lower(status), created_at, operation_key);
CREATE INDEX operations_by_status_end
    ON operations (subscription_id, lower(status), end_time, operation_key)
    WHERE end_time IS NOT NULL;
-- Lists ordered by start or end time.
CREATE INDEX operations_by_start
    ON operations (subscription_id, start_time, operation_key);
CREATE INDEX operations_by_end
    ON operations (subscription_id, end_time, operation_key) WHERE end_time IS NOT NULL;
-- What is left of removed operations, so that reads can say "expired".
CREATE TABLE IF NOT EXISTS tombstones (
    subscription_id     TEXT NOT NULL,
    operation_key       TEXT NOT NULL,
    operation_id        TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    location            TEXT NOT NULL,
    status              TEXT NOT NULL,
    end_time            TEXT,
    expired_at          TEXT NOT NULL,
    reason              TEXT NOT NULL,
    forget_at           TEXT NOT NULL,
    PRIMARY KEY (subscription_id, operation_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_by_forget_at ON tombstones (forget_at);


-- Every change of an operation, written in the transaction that makes it (events.py).
CREATE TABLE IF NOT EXISTS events (
    cursor              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id     TEXT NOT NULL,
    operation_key       TEXT NOT NULL,
    sequence            INTEGER NOT NULL,
    type                TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    location            TEXT NOT NULL,
    status              TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    keep_until          TEXT,
    data                TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_operation
    ON events (subscription_id, operation_key, sequence);
CREATE INDEX IF NOT EXISTS events_by_keep_until
    ON events (keep_until) WHERE keep_until IS NOT NULL;
-- The webhook an operation's creator asked for (callbackUrl).
CREATE TABLE IF NOT EXISTS callbacks (
    subscription_id     TEXT NOT NULL,
    operation_key       TEXT NOT NULL,
    url                 TEXT NOT NULL,
    event_types         TEXT,
    PRIMARY KEY (subscription_id, operation_key)
) WITHOUT ROWID;
-- Webhook subscriptions over a subscription, maybe narrowed to a provider and location.
CREATE TABLE IF NOT EXISTS webhooks (
    id                  TEXT PRIMARY KEY,
    subscription_id     TEXT NOT NULL,
    namespace           TEXT,
    location            TEXT,
    event_types         TEXT,
    url                 TEXT NOT NULL,
    secret              TEXT NOT NULL,
    previous_secret     TEXT,
    previous_until      TEXT,
    created_at          TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhooks_by_subscription ON webhooks (subscription_id);
-- One row per event and endpoint: the outbox of webhook sends, and their history.
CREATE TABLE IF NOT EXISTS deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id          TEXT NOT NULL UNIQUE,
    webhook_id          TEXT NOT NULL,
    subscription_id     TEXT NOT NULL,
    operation_key       TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    url                 TEXT NOT NULL,
    payload             TEXT NOT NULL,
    state               TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    last_attempt_at     TEXT,
    last_status         INTEGER,
    last_error          TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due
    ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_by_target
    ON deliveries (webhook_id, subscription_id, operation_key, id);
CREATE INDEX IF NOT EXISTS deliveries_by_operation
    ON deliveries (subscription_id, operation_key, id);
CREATE INDEX IF NOT EXISTS deliveries_by_created ON deliveries (created_at);
-- How far the webhook dispatcher has turned events into deliveries.
CREATE TABLE IF NOT EXISTS event_dispatch (
    name                TEXT PRIMARY KEY,
    position_group      INTEGER NOT NULL,
    position_cursor     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO event_dispatch (name, position_group, position_cursor)
    VALUES ('webhooks', 0, 0);
