-- 005: a route published ahead of its service (tunnel_request_cname with publishAhead) remembers since when it waits
-- for the service to answer, and when its owner was told that it still does not; both are cleared the first time
-- the service answers.
ALTER TABLE routes ADD COLUMN awaiting_service_since INTEGER;
ALTER TABLE routes ADD COLUMN awaiting_service_noticed_at INTEGER;
