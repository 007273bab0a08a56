-- 0006: operation counts kept on write (the dashboard's overview), and the indexes of the
-- lists' new orders and filters.

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
INSERT INTO opstatus_operation_tallies
    SELECT subscription_id, namespace, location, status, (hashtext(operation_key) & 7)::smallint,
        count(*)
    FROM opstatus_operations GROUP BY 1, 2, 3, 4, 5;
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
