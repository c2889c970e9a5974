-- 008: a route put back by `restore` is served only once the next start has checked it against the world (its DNS
-- record is ours, its project exists and holds its port): until then it is `unverified_since` the restore.
ALTER TABLE routes ADD COLUMN unverified_since INTEGER;
