-- Schema version 6: which process is each sender now ("host pid random"), so a second live
-- process under the same WORKER_ID is refused (message_queue/workers.py).
ALTER TABLE workers ADD COLUMN instance TEXT COLLATE "C";
