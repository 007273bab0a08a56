-- 0006: operation counts kept on write (the dashboard's overview), and the indexes of the
-- lists' new orders and filters.

-- How many operations each (subscription, provider, location, status) holds: every row of
-- operations, counted by the triggers below as it is inserted, changed or deleted, so that
-- counting costs the number of groups, not of operations. Groups that fall to zero stay
-- (with count 0) and are left out when read.
CREATE TABLE operation_tallies (
    subscription_id     TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    location            TEXT NOT NULL,
    status              TEXT NOT NULL,
    count               INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, namespace, location, status)
) WITHOUT ROWID;
INSERT INTO operation_tallies (subscription_id, namespace, location, status, count)
    SELECT subscription_id, namespace, location, status, COUNT(*) FROM operations
    GROUP BY subscription_id, namespace, location, status;
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
