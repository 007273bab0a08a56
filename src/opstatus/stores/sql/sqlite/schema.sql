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
