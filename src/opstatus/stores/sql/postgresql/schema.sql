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
-- How many operations each (subscription, provider, location, status) holds: every row of
-- opstatus_operations, counted by the triggers below as it is inserted, changed or deleted,
-- so that counting costs the number of groups, not of operations. Each group is spread over
-- eight slots, chosen by the operation key's hash, and read as their sum: concurrent writers
-- of one group then rarely wait for the same row. Groups that fall to zero stay, and are left
-- out when read.
CREATE TABLE opstatus_operation_tallies (
    subscription_id     text NOT NULL,
    namespace           text NOT NULL,
    location            text NOT NULL,
    status              text NOT NULL,
    slot                smallint NOT NULL,
    count               bigint NOT NULL,
    PRIMARY KEY (subscription_id, namespace, location, status, slot)
);
-- Rows are added to in key order, in every trigger, so that two transactions never wait for
-- each other's tally rows in a cycle.
CREATE FUNCTION opstatus_tally_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO opstatus_operation_tallies AS t
        SELECT subscription_id, namespace, location, status,
            (hashtext(operation_key) & 7)::smallint, count(*)
        FROM added GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (subscription_id, namespace, location, status, slot)
        DO UPDATE SET count = t.count + EXCLUDED.count;
    RETURN NULL;
END $$;
CREATE FUNCTION opstatus_tally_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO opstatus_operation_tallies AS t
        SELECT subscription_id, namespace, location, status,
            (hashtext(operation_key) & 7)::smallint, -count(*)
        FROM removed GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (subscription_id, namespace, location, status, slot)
        DO UPDATE SET count = t.count + EXCLUDED.count;
    RETURN NULL;
END $$;
CREATE FUNCTION opstatus_tally_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO opstatus_operation_tallies AS t
        SELECT * FROM (VALUES
            (OLD.subscription_id, OLD.namespace, OLD.location, OLD.status,
                (hashtext(OLD.operation_key) & 7)::smallint, -1::bigint),
            (NEW.subscription_id, NEW.namespace, NEW.location, NEW.status,
                (hashtext(NEW.operation_key) & 7)::smallint, 1::bigint)
        ) AS change (subscription_id, namespace, location, status, slot, count)
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (subscription_id, namespace, location, status, slot)
        DO UPDATE SET count = t.count + EXCLUDED.count;
    RETURN NULL;
END $$;
CREATE TRIGGER opstatus_operations_tally_insert AFTER INSERT ON opstatus_operations
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION opstatus_tally_inserted();
CREATE TRIGGER opstatus_operations_tally_delete AFTER DELETE ON opstatus_operations
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION opstatus_tally_deleted();
CREATE TRIGGER opstatus_operations_tally_update
    AFTER UPDATE OF status, namespace, location ON opstatus_operations FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.namespace IS DISTINCT FROM NEW.namespace
        OR OLD.location IS DISTINCT FROM NEW.location)
    EXECUTE FUNCTION opstatus_tally_changed();

-- A provider's or a location's list, newest first (on PostgreSQL, also the statistics of
-- lower(namespace) its planner needs).
CREATE INDEX opstatus_operations_by_scope
    ON opstatus_operations (subscription_id, lower(namespace), location, created_at, operation_key);
-- Lists by status, newest first ("running now"), and by end time ("recent failures").
CREATE INDEX opstatus_operations_by_status_created
    ON opstatus_operations (subscription_id, lower(status), created_at, operation_key);
CREATE INDEX opstatus_operations_by_status_end
    ON opstatus_operations (subscription_id, lower(status), end_time, operation_key)
    WHERE end_time IS NOT NULL;
-- Lists ordered by start or end time.
CREATE INDEX opstatus_operations_by_start
    ON opstatus_operations (subscription_id, start_time, operation_key);
CREATE INDEX opstatus_operations_by_end
    ON opstatus_operations (subscription_id, end_time, operation_key) WHERE end_time IS NOT NULL;
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


-- Every change of an operation, written in the transaction that makes it (events.py). Its
-- position is (txid, cursor): readers take only events of transactions older than every
-- open one, so that a position once passed is never filled in behind them.
CREATE TABLE opstatus_events (
    cursor              bigserial PRIMARY KEY,
    txid                xid8 NOT NULL DEFAULT pg_current_xact_id(),
    subscription_id     text NOT NULL,
    operation_key       text NOT NULL,
    sequence            integer NOT NULL,
    type                text NOT NULL,
    namespace           text NOT NULL,
    location            text NOT NULL,
    status              text NOT NULL,
    created_at          text NOT NULL,
    keep_until          text,
    data                text NOT NULL
);
CREATE INDEX opstatus_events_by_position ON opstatus_events (txid, cursor);
CREATE INDEX opstatus_events_by_operation
    ON opstatus_events (subscription_id, operation_key, sequence);
CREATE INDEX opstatus_events_by_keep_until
    ON opstatus_events (keep_until) WHERE keep_until IS NOT NULL;
-- The webhook an operation's creator asked for (callbackUrl).
CREATE TABLE opstatus_callbacks (
    subscription_id     text NOT NULL,
    operation_key       text NOT NULL,
    url                 text NOT NULL,
    event_types         text,
    PRIMARY KEY (subscription_id, operation_key)
);
-- Webhook subscriptions over a subscription, maybe narrowed to a provider and location.
CREATE TABLE opstatus_webhooks (
    id                  text PRIMARY KEY,
    subscription_id     text NOT NULL,
    namespace           text,
    location            text,
    event_types         text,
    url                 text NOT NULL,
    secret              text NOT NULL,
    previous_secret     text,
    previous_until      text,
    created_at          text NOT NULL
);
CREATE INDEX opstatus_webhooks_by_subscription ON opstatus_webhooks (subscription_id);
-- One row per event and endpoint: the outbox of webhook sends, and their history.
CREATE TABLE opstatus_deliveries (
    id                  bigserial PRIMARY KEY,
    message_id          text NOT NULL UNIQUE,
    webhook_id          text NOT NULL,
    subscription_id     text NOT NULL,
    operation_key       text NOT NULL,
    event_id            text NOT NULL,
    event_type          text NOT NULL,
    url                 text NOT NULL,
    payload             text NOT NULL,
    state               text NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     text NOT NULL,
    last_attempt_at     text,
    last_status         integer,
    last_error          text,
    created_at          text NOT NULL
);
CREATE INDEX opstatus_deliveries_due
    ON opstatus_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX opstatus_deliveries_by_target
    ON opstatus_deliveries (webhook_id, subscription_id, operation_key, id);
CREATE INDEX opstatus_deliveries_by_operation
    ON opstatus_deliveries (subscription_id, operation_key, id);
CREATE INDEX opstatus_deliveries_by_created ON opstatus_deliveries (created_at);
-- How far the webhook dispatcher has turned events into deliveries.
CREATE TABLE opstatus_event_dispatch (
    name                text PRIMARY KEY,
    position_group      bigint NOT NULL,
    position_cursor     bigint NOT NULL
);
INSERT INTO opstatus_event_dispatch (name, position_group, position_cursor)
    VALUES ('webhooks', 0, 0);
