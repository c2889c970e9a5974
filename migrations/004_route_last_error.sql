-- 004: why the last change of a route failed, kept with the row. A delete whose DNS step failed keeps its row
-- (status 'deleting', no saga running) with this error until the record is really gone: the row is retried on a
-- schedule, listed, and the owner can retry it.
ALTER TABLE routes ADD COLUMN last_error TEXT;
