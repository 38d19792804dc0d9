CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    template TEXT NOT NULL,
    attachment_path TEXT,
    attachment_name TEXT,
    total INTEGER NOT NULL,
    sms_parts INTEGER,
    last_error TEXT,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL,
    -- Careful sending (schema version 5): when a scheduled job starts, the zone of numbers
    -- that have several, the job's own lower caps, why it paused itself, and since when its
    -- failure rate is judged (a resume starts afresh).
    send_at REAL,
    timezone TEXT,
    daily_cap INTEGER,
    hourly_cap INTEGER,
    paused_reason TEXT,
    judged_from REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, created_at);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    row INTEGER,
    phone TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_at REAL,
    sent_at REAL,
    provider_id TEXT,
    resent_to TEXT,  -- the job a person sent this row again in (failed, unknown, cancelled)
    updated_at REAL NOT NULL,
    -- The recipient's time zone for SEND_WINDOW, fixed when the row is written; '' is
    -- TIMEZONE's (schema version 5).
    zone TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_job ON messages(job_id, status);
CREATE INDEX IF NOT EXISTS messages_in_flight ON messages(channel, claimed_by)
    WHERE status = 'sending';
-- SMS awaiting a delivery report: polled while the worker is idle, so never a table scan.
CREATE INDEX IF NOT EXISTS messages_awaiting_delivery ON messages(channel, id)
    WHERE status = 'sent' AND provider_id IS NOT NULL;

-- Counts per status, kept by a trigger so /status of a 100,000-row job is one small read.
CREATE TABLE IF NOT EXISTS job_counts (
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, status)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS messages_count AFTER UPDATE OF status ON messages
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE job_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
    UPDATE job_counts SET n = n + 1 WHERE job_id = NEW.job_id AND status = NEW.status;
END;

CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    current_job_id TEXT,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    qr_png BLOB,
    qr_at REAL,
    -- Which process is this sender now ("host pid random"; schema version 6): a second
    -- live process under the same WORKER_ID is refused, so one name is one sender.
    instance TEXT
);

-- Signed-in /app pages. The cookie carries a random id; only its sha256 is kept here, so a
-- copy of this file (a backup) signs nobody in. key_mac binds the session to the API key.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    key_mac TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL
) WITHOUT ROWID;

-- Replies and opt-outs (schema version 4) ------------------------------------------------

-- Numbers nobody may message again, on any channel, until they write a start keyword or a
-- person removes them. reason: keyword | manual | import; source: what caused it (the
-- message's text, the file's name); inbound_id: the reply that did, for a keyword.
CREATE TABLE IF NOT EXISTS suppressions (
    phone TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    inbound_id INTEGER,
    created_at REAL NOT NULL
) WITHOUT ROWID;

-- What people wrote to us. dedupe_key (sender, time received, text) stores one message once
-- however often it arrives: a webhook retry, the inbox catch-up, a second registration.
-- job_id: the campaign that last wrote to the number before the reply.
CREATE TABLE IF NOT EXISTS inbound (
    id INTEGER PRIMARY KEY,
    phone TEXT NOT NULL,
    channel TEXT NOT NULL,
    sender TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'text',
    received_at REAL NOT NULL,
    provider_id TEXT,
    dedupe_key TEXT NOT NULL UNIQUE,
    job_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS inbound_by_phone ON inbound(phone, received_at);
CREATE INDEX IF NOT EXISTS inbound_by_job ON inbound(job_id);
-- Where a channel's catch-up starts: the newest reply stored for it.
CREATE INDEX IF NOT EXISTS inbound_by_channel ON inbound(channel, received_at);

-- One row per contact with any activity, so the inbox lists 10,000 threads from an index.
-- Written when a reply arrives, and for what was sent by each worker between two sends
-- (`follow_sent`), off the send's own transaction: not when a message is queued (a
-- 100,000-row upload must not write 100,000 of these).
CREATE TABLE IF NOT EXISTS conversations (
    phone TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    unread INTEGER NOT NULL DEFAULT 0,
    starred INTEGER NOT NULL DEFAULT 0,
    last_message_at REAL NOT NULL,
    last_text TEXT NOT NULL DEFAULT '',
    last_direction TEXT NOT NULL,
    channel TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_recent ON conversations(last_message_at);
-- A thread's outbound side: every message ever queued to the number.
CREATE INDEX IF NOT EXISTS messages_by_phone ON messages(phone, id);
-- A job's opt-outs for its status object: a stopped 100,000-row job has that many cancelled
-- rows, which /status must not read on every poll.
CREATE INDEX IF NOT EXISTS messages_opted_out ON messages(job_id)
    WHERE status = 'cancelled' AND error = 'opted_out';

-- Careful sending (schema version 5) ---------------------------------------------------

-- The time zones of each job's rows, so a claim asks only zones whose window is open and
-- skips a closed zone's rows without reading them.
CREATE TABLE IF NOT EXISTS job_zones (
    job_id TEXT NOT NULL,
    zone TEXT NOT NULL,
    PRIMARY KEY (job_id, zone)
) WITHOUT ROWID;

-- The senders a job may use, when it names them (/send `senders`); none: every sender of its
-- channel.
CREATE TABLE IF NOT EXISTS job_senders (
    job_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    PRIMARY KEY (job_id, sender)
) WITHOUT ROWID;

-- Each sender (WORKER_ID) and its first send, where its warm-up counts from. followed_at/_id:
-- the last of its sent rows the inbox's list (conversations) has taken in.
CREATE TABLE IF NOT EXISTS senders (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    first_send_at REAL NOT NULL,
    followed_at REAL NOT NULL DEFAULT 0,
    followed_id INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- What a sender, and a job, really sent lately: caps count these (rows that reached sent,
-- delivered or unknown, by the time they were claimed), a bounded range of an index.
CREATE INDEX IF NOT EXISTS messages_sent_by_sender ON messages(claimed_by, claimed_at)
    WHERE status IN ('sent', 'delivered', 'unknown');
-- A job's recent outcomes: its own caps and its failure rate (auto-pause).
CREATE INDEX IF NOT EXISTS messages_tried_by_job ON messages(job_id, claimed_at)
    WHERE status IN ('sent', 'delivered', 'unknown', 'failed');
