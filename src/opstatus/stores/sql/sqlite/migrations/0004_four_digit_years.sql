-- 0003: times with a year below 1000, which older versions wrote with fewer than four digits
-- ('999-06-01T...'), get their year zero-padded ('0999-06-01T...'). Times compare as text,
-- so only fixed-width ones order in time. The schema itself is unchanged.

UPDATE operations SET start_time = substr('000', 1, 5 - instr(start_time, '-')) || start_time
    WHERE instr(start_time, '-') BETWEEN 2 AND 4;
UPDATE operations SET end_time = substr('000', 1, 5 - instr(end_time, '-')) || end_time
    WHERE instr(end_time, '-') BETWEEN 2 AND 4;
UPDATE tombstones SET end_time = substr('000', 1, 5 - instr(end_time, '-')) || end_time
    WHERE instr(end_time, '-') BETWEEN 2 AND 4;
