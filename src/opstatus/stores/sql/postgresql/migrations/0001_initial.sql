-- 0001: the operations table.

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
