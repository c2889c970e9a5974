-- 007: a route whose DNS record could not be deleted is retried on a backing-off schedule: how many attempts failed
-- so far, and when the next one runs (null: at once), so tunnel_list_cnames can say it and a restart keeps it.
ALTER TABLE routes ADD COLUMN delete_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE routes ADD COLUMN next_retry_at INTEGER;
