-- Schema version 7: each job's counts spread over slots, one per writing connection (its
-- backend's pid modulo 32). Every claim and every mark changes two counts of its job; with
-- one row per count, all senders of a job waited in turn for the same two rows until each
-- other's COMMIT. Readers add the slots up (sum(n) ... GROUP BY status); a slot's count may be
-- negative (a row counted in one slot as it came, in another as it left).
ALTER TABLE job_counts ADD COLUMN slot SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE job_counts DROP CONSTRAINT job_counts_pkey;
ALTER TABLE job_counts ADD PRIMARY KEY (job_id, status, slot);

-- The old status is counted down before the new one up, in every transaction: claims move
-- a row from waiting to sending and marks from sending to sent, an order in which no two of
-- them, sharing the write lock, can wait for each other.
CREATE OR REPLACE FUNCTION messages_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_slot SMALLINT := pg_backend_pid() % 32;
BEGIN
    UPDATE job_counts SET n = n - 1
        WHERE job_id = OLD.job_id AND status = OLD.status AND slot = my_slot;
    IF NOT FOUND THEN
        INSERT INTO job_counts AS c (job_id, status, slot, n)
            VALUES (OLD.job_id, OLD.status, my_slot, -1)
            ON CONFLICT (job_id, status, slot) DO UPDATE SET n = c.n - 1;
    END IF;
    UPDATE job_counts SET n = n + 1
        WHERE job_id = NEW.job_id AND status = NEW.status AND slot = my_slot;
    IF NOT FOUND THEN
        INSERT INTO job_counts AS c (job_id, status, slot, n)
            VALUES (NEW.job_id, NEW.status, my_slot, 1)
            ON CONFLICT (job_id, status, slot) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END $$;
