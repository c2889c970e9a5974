-- 002: the saga that reserved a route, so a restored saga recognises its own reservation
-- and a concurrent request for the same hostname is told it lost.
ALTER TABLE routes ADD COLUMN request_id TEXT;
