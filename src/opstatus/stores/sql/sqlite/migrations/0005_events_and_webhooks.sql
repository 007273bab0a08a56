-- 0004: the event log, webhook subscriptions, operations' callbacks and webhook deliveries.

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
