-- 001: the seed's eight tables plus what the design needs.
-- Times are INTEGER milliseconds since the Unix epoch (UTC). JSON columns hold TEXT.

-- The route ledger (the seed's `cnames`): who owns which hostname and where it points.
CREATE TABLE routes (
  id                INTEGER PRIMARY KEY,
  hostname          TEXT    NOT NULL COLLATE NOCASE UNIQUE,
  zone_id           TEXT    NOT NULL,
  zone_name         TEXT    NOT NULL COLLATE NOCASE,
  project           TEXT    NOT NULL,
  target_port       INTEGER,
  service           TEXT,
  target_reason     TEXT,
  path              TEXT,
  origin_request    TEXT,
  dns_record_id     TEXT,
  dns_created       INTEGER NOT NULL DEFAULT 0 CHECK (dns_created IN (0, 1)),
  status            TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'deleting', 'failed', 'adopted')),
  source            TEXT    NOT NULL DEFAULT 'request' CHECK (source IN ('request', 'adopted')),
  expires_at        INTEGER,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);
CREATE INDEX routes_by_project ON routes (project, hostname);
CREATE INDEX routes_by_status ON routes (status);
CREATE INDEX routes_by_expiry ON routes (expires_at) WHERE expires_at IS NOT NULL;

-- Health probe samples: raw for 7 days, then hourly rollups.
CREATE TABLE tunnel_health (
  id                INTEGER PRIMARY KEY,
  ts                INTEGER NOT NULL,
  result            TEXT    NOT NULL CHECK (result IN ('ok', 'degraded', 'failed')),
  pid               INTEGER,
  ready_connections INTEGER,
  ha_connections    INTEGER,
  total_requests    INTEGER,
  request_errors    INTEGER,
  latency_ms        REAL,
  error             TEXT
);
CREATE INDEX tunnel_health_by_ts ON tunnel_health (ts);

CREATE TABLE tunnel_health_hourly (
  hour_start        INTEGER PRIMARY KEY,
  samples           INTEGER NOT NULL,
  ok_samples        INTEGER NOT NULL,
  degraded_samples  INTEGER NOT NULL,
  failed_samples    INTEGER NOT NULL,
  ready_min         INTEGER,
  ready_avg         REAL,
  ready_max         INTEGER,
  latency_min       REAL,
  latency_avg       REAL,
  latency_max       REAL,
  uptime_pct        REAL    NOT NULL
) WITHOUT ROWID;

-- Cloudflare zones of the account.
CREATE TABLE domains (
  zone_id           TEXT    PRIMARY KEY,
  name              TEXT    NOT NULL COLLATE NOCASE UNIQUE,
  status            TEXT    NOT NULL,
  plan              TEXT,
  account_id        TEXT,
  refreshed_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- Docker topology as last seen.
CREATE TABLE docker_networks (
  id                TEXT    PRIMARY KEY,
  name              TEXT    NOT NULL,
  driver            TEXT    NOT NULL,
  subnet            TEXT,
  internal          INTEGER NOT NULL DEFAULT 0 CHECK (internal IN (0, 1)),
  labels            TEXT    NOT NULL DEFAULT '{}',
  seen_at           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX docker_networks_by_name ON docker_networks (name);

CREATE TABLE docker_containers (
  id                TEXT    PRIMARY KEY,
  name              TEXT    NOT NULL,
  image             TEXT    NOT NULL,
  state             TEXT    NOT NULL,
  network_mode      TEXT,
  labels            TEXT    NOT NULL DEFAULT '{}',
  extra_hosts       TEXT    NOT NULL DEFAULT '[]',
  seen_at           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX docker_containers_by_name ON docker_containers (name);

CREATE TABLE container_networks (
  container_id      TEXT    NOT NULL REFERENCES docker_containers (id) ON DELETE CASCADE,
  network_id        TEXT    NOT NULL,
  network_name      TEXT    NOT NULL,
  aliases           TEXT    NOT NULL DEFAULT '[]',
  ip_address        TEXT,
  PRIMARY KEY (container_id, network_id)
) WITHOUT ROWID;
CREATE INDEX container_networks_by_network ON container_networks (network_id);

CREATE TABLE container_ports (
  id                INTEGER PRIMARY KEY,
  container_id      TEXT    NOT NULL REFERENCES docker_containers (id) ON DELETE CASCADE,
  container_port    INTEGER NOT NULL,
  protocol          TEXT    NOT NULL DEFAULT 'tcp',
  host_ip           TEXT,
  host_port         INTEGER
);
CREATE INDEX container_ports_by_container ON container_ports (container_id);
CREATE INDEX container_ports_by_host_port ON container_ports (host_port) WHERE host_port IS NOT NULL;

-- Every tool call and every change, allowed or denied. Never holds a secret.
CREATE TABLE audit_log (
  id                INTEGER PRIMARY KEY,
  ts                INTEGER NOT NULL,
  principal         TEXT    NOT NULL,
  action            TEXT    NOT NULL,
  target            TEXT,
  arguments         TEXT    NOT NULL DEFAULT '{}',
  outcome           TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  error_code        TEXT,
  duration_ms       REAL,
  details           TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_ts ON audit_log (ts);
CREATE INDEX audit_log_by_principal ON audit_log (principal, ts);

-- Persisted actor snapshots (the supervisor with its children), tagged with the machine version.
CREATE TABLE actor_snapshots (
  actor_id          TEXT    PRIMARY KEY,
  machine_version   TEXT    NOT NULL,
  snapshot          TEXT    NOT NULL,
  updated_at        INTEGER NOT NULL
) WITHOUT ROWID;

-- Bounded history of state transitions seen by the root actor's inspector.
CREATE TABLE actor_transitions (
  id                INTEGER PRIMARY KEY,
  ts                INTEGER NOT NULL,
  actor_id          TEXT    NOT NULL,
  event_type        TEXT    NOT NULL,
  from_state        TEXT,
  to_state          TEXT    NOT NULL
);
CREATE INDEX actor_transitions_by_actor ON actor_transitions (actor_id, id);

-- Ports handed to projects (PortManager).
CREATE TABLE port_allocations (
  port              INTEGER PRIMARY KEY CHECK (port BETWEEN 1 AND 65535),
  project           TEXT    NOT NULL,
  purpose           TEXT    NOT NULL,
  allocated_at      INTEGER NOT NULL
);
CREATE INDEX port_allocations_by_project ON port_allocations (project, port);

-- Events worth telling someone; the id is the cursor a client resumes from.
CREATE TABLE events (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  ts                INTEGER NOT NULL,
  kind              TEXT    NOT NULL,
  project           TEXT    NOT NULL DEFAULT '*',
  data              TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_project ON events (project, id);
