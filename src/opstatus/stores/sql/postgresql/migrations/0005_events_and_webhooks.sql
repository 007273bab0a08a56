-- 0004: the event log, webhook subscriptions, operations' callbacks and webhook deliveries.

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
