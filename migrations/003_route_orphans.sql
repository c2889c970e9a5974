-- 003: routes the orphan scan found without a reason to exist (their project left the configuration,
-- their DNS record no longer points at the tunnel, their port is no longer allocated to them),
-- and since when: the grace period before a removed project's routes are removed counts from it.
ALTER TABLE routes ADD COLUMN orphaned_since INTEGER;
ALTER TABLE routes ADD COLUMN orphan_reason TEXT;
