-- 0001: the operations table (schema version 1, as opstatus 0.1 created it).
-- IF NOT EXISTS: databases made before migrations existed already have it at user_version 1.

CREATE TABLE IF NOT EXISTS operations (
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
