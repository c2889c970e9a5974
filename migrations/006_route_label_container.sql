-- 006: a route declared by Docker labels (tunnel-manager.hostname on a container) remembers the container that
-- declares it, so the route is released when that container is gone for longer than the grace period.
ALTER TABLE routes ADD COLUMN label_container TEXT;
