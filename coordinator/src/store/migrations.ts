/**
 * The store's schema, one entry per version, applied in order inside a
 * transaction. Never edit a shipped entry: add a new one.
 */
export const MIGRATIONS: readonly { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: "tokens and hosts",
    sql: `
      CREATE TABLE api_tokens (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('read', 'deploy', 'admin')),
        hash        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
      );
      CREATE TABLE enrollment_tokens (
        id          TEXT PRIMARY KEY,
        hash        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER,
        used_by     TEXT
      );
      CREATE TABLE hosts (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        public_key    BLOB NOT NULL UNIQUE,
        address       TEXT NOT NULL DEFAULT '',
        hostname      TEXT NOT NULL DEFAULT '',
        labels        TEXT NOT NULL DEFAULT '{}',
        capabilities  TEXT NOT NULL DEFAULT '[]',
        agent_version TEXT NOT NULL DEFAULT '',
        resources     TEXT,
        instances     TEXT NOT NULL DEFAULT '[]',
        enrolled_at   INTEGER NOT NULL,
        last_seen     INTEGER
      );
    `,
  },
  {
    version: 2,
    description: "artifacts, apps and deployments with per-host timelines",
    sql: `
      CREATE TABLE artifacts (
        sha256      TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
      );
      CREATE TABLE apps (
        name        TEXT PRIMARY KEY,
        spec        TEXT NOT NULL,
        spec_file   TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
      );
      CREATE TABLE deployments (
        id              TEXT PRIMARY KEY,
        app             TEXT NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
        release         TEXT NOT NULL,
        strategy        TEXT NOT NULL,
        spec            TEXT NOT NULL,
        artifact_sha256 TEXT,
        state           TEXT NOT NULL,
        error           TEXT,
        created_by      TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        finished_at     INTEGER
      );
      CREATE INDEX deployments_by_app ON deployments (app, created_at);
      CREATE TABLE deployment_hosts (
        deployment_id    TEXT NOT NULL REFERENCES deployments (id),
        host_name        TEXT NOT NULL,
        batch            INTEGER NOT NULL,
        state            TEXT NOT NULL,
        error            TEXT,
        live_color       TEXT,
        release          TEXT,
        previous_release TEXT,
        switch_ms        REAL,
        boot_ms          REAL,
        started_at       INTEGER,
        finished_at      INTEGER,
        PRIMARY KEY (deployment_id, host_name)
      );
      CREATE TABLE deployment_events (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id  TEXT NOT NULL REFERENCES deployments (id),
        at             INTEGER NOT NULL,
        host_name      TEXT,
        kind           TEXT NOT NULL,
        message        TEXT NOT NULL
      );
      CREATE INDEX deployment_events_by_deployment ON deployment_events (deployment_id, id);
    `,
  },
  {
    version: 3,
    description: "the agent's whole time per host command",
    sql: `
      ALTER TABLE deployment_hosts ADD COLUMN total_ms REAL;
      ALTER TABLE deployment_hosts ADD COLUMN handover_ms REAL;
    `,
  },
  {
    version: 4,
    description: "each app's front load-balancer upstream as last applied",
    sql: `ALTER TABLE apps ADD COLUMN lb_state TEXT;`,
  },
  {
    version: 5,
    description: "audit trail: API changes and commands sent to agents",
    sql: `
      CREATE TABLE audit (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        INTEGER NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        target    TEXT NOT NULL,
        outcome   TEXT NOT NULL,
        detail    TEXT NOT NULL DEFAULT ''
      );
      CREATE INDEX audit_by_time ON audit (at);
    `,
  },
  {
    version: 6,
    description: "the command id each host's step was sent with, so a restarted coordinator re-asks instead of acting twice",
    sql: `ALTER TABLE deployment_hosts ADD COLUMN command_id TEXT;`,
  },
  {
    version: 7,
    description: "revocation and expiry of tokens, host identity bound at enrollment, per-host command sequences, retired host keys",
    sql: `
      ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
      ALTER TABLE api_tokens ADD COLUMN revoked_by TEXT;
      ALTER TABLE enrollment_tokens ADD COLUMN labels TEXT;
      ALTER TABLE enrollment_tokens ADD COLUMN address TEXT;
      ALTER TABLE enrollment_tokens ADD COLUMN revoked_at INTEGER;
      ALTER TABLE enrollment_tokens ADD COLUMN revoked_by TEXT;
      ALTER TABLE hosts ADD COLUMN pending_labels TEXT;
      ALTER TABLE hosts ADD COLUMN pending_address TEXT;
      ALTER TABLE hosts ADD COLUMN command_sequence INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE retired_hosts (
        public_key  BLOB PRIMARY KEY,
        name        TEXT NOT NULL,
        removed_at  INTEGER NOT NULL,
        removed_by  TEXT NOT NULL
      );
    `,
  },
  {
    version: 8,
    description: "app locks: who holds an app against deploys and rollbacks, and why",
    sql: `
      CREATE TABLE app_locks (
        app          TEXT PRIMARY KEY,
        holder       TEXT NOT NULL,
        reason       TEXT NOT NULL,
        acquired_at  INTEGER NOT NULL
      );
    `,
  },
  {
    version: 9,
    description: "app secrets, sealed (AES-256-GCM with DATA_DIR/secrets.key, the app and name as additional data)",
    sql: `
      CREATE TABLE app_secrets (
        app     TEXT NOT NULL,
        name    TEXT NOT NULL,
        sealed  BLOB NOT NULL,
        set_at  INTEGER NOT NULL,
        set_by  TEXT NOT NULL,
        PRIMARY KEY (app, name)
      );
    `,
  },
  {
    version: 10,
    description: "cordoned hosts: kept out of deploys and front load balancers, with who, why and when",
    sql: `ALTER TABLE hosts ADD COLUMN cordon TEXT;`,
  },
  {
    version: 11,
    description: "coordinators sharing one store (docs/ha.md): the lease, the members, artifacts in chunks, deployments in creation order",
    sql: `
      CREATE TABLE coordinator_lease (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        holder      TEXT NOT NULL,
        epoch       INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      );
      CREATE TABLE coordinator_members (
        id          TEXT PRIMARY KEY,
        api_url     TEXT NOT NULL,
        agent_url   TEXT NOT NULL,
        version     TEXT NOT NULL,
        keys_id     TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        seen_at     INTEGER NOT NULL
      );
      CREATE TABLE artifact_chunks (
        sha256  TEXT NOT NULL,
        idx     INTEGER NOT NULL,
        data    BLOB NOT NULL,
        PRIMARY KEY (sha256, idx)
      );
      ALTER TABLE deployments ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    `,
  },
];
