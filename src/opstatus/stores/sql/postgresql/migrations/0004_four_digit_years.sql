-- 0003: times with a year below 1000, which older versions wrote with fewer than four digits
-- ('999-06-01T...'), get their year zero-padded ('0999-06-01T...'). Times compare as text,
-- so only fixed-width ones order in time. The schema itself is unchanged.

UPDATE opstatus_operations
    SET start_time = lpad(split_part(start_time, '-', 1), 4, '0')
        || substr(start_time, strpos(start_time, '-'))
    WHERE strpos(start_time, '-') BETWEEN 2 AND 4;
UPDATE opstatus_operations
    SET end_time = lpad(split_part(end_time, '-', 1), 4, '0')
        || substr(end_time, strpos(end_time, '-'))
    WHERE strpos(end_time, '-') BETWEEN 2 AND 4;
UPDATE opstatus_tombstones
    SET end_time = lpad(split_part(end_time, '-', 1), 4, '0')
        || substr(end_time, strpos(end_time, '-'))
    WHERE strpos(end_time, '-') BETWEEN 2 AND 4;
