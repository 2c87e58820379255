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
];
