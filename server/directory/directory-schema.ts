// The directory's tables, written once for SQLite and Postgres (dialect holes from
// ../store/sql-dialect.ts). On Postgres they share a database (and schema) with the log store, so
// no name may clash with the store's: the access side of a conversation is `conversation_records`
// (the store's `conversations` holds its log heads), and the version sits in its own table.

import type { VersionedSchema } from "../sql/versioned-schema.ts";

export const DIRECTORY_SCHEMA: VersionedSchema = {
  name: "directory",
  versionTable: "directory_schema_version",
  migrations: [
    (d) => `
    CREATE TABLE IF NOT EXISTS organisations (
      id           TEXT PRIMARY KEY,
      name         TEXT NOT NULL,
      created_at   ${d.int64} NOT NULL,
      require_2fa  ${d.boolean} NOT NULL DEFAULT FALSE,
      ip_allowlist TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE IF NOT EXISTS users (
      id             TEXT PRIMARY KEY,
      email          TEXT NOT NULL UNIQUE,
      name           TEXT NOT NULL,
      password_hash  TEXT,
      totp_sealed    ${d.bytes},
      totp_enabled   ${d.boolean} NOT NULL DEFAULT FALSE,
      totp_last_step ${d.int64},
      created_at     ${d.int64} NOT NULL
    );
    CREATE TABLE IF NOT EXISTS memberships (
      org_id     TEXT NOT NULL REFERENCES organisations(id),
      user_id    TEXT NOT NULL REFERENCES users(id),
      role       TEXT NOT NULL,
      created_at ${d.int64} NOT NULL,
      PRIMARY KEY (org_id, user_id)
    );
    CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships(user_id);
    CREATE TABLE IF NOT EXISTS recovery_codes (
      user_id   TEXT NOT NULL REFERENCES users(id),
      code_hash TEXT NOT NULL,
      used_at   ${d.int64},
      PRIMARY KEY (user_id, code_hash)
    );
    CREATE TABLE IF NOT EXISTS api_keys (
      id           TEXT PRIMARY KEY,
      org_id       TEXT NOT NULL REFERENCES organisations(id),
      name         TEXT NOT NULL,
      scopes       TEXT NOT NULL,
      secret_hash  TEXT NOT NULL,
      created_at   ${d.int64} NOT NULL,
      created_by   TEXT NOT NULL,
      last_used_at ${d.int64},
      revoked_at   ${d.int64}
    );
    CREATE INDEX IF NOT EXISTS api_keys_by_org ON api_keys(org_id);
    CREATE TABLE IF NOT EXISTS conversation_records (
      id           TEXT PRIMARY KEY,
      org_id       TEXT NOT NULL REFERENCES organisations(id),
      title        TEXT NOT NULL,
      external_ref TEXT,
      status       TEXT NOT NULL,
      created_at   ${d.int64} NOT NULL,
      created_by   TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS conversation_records_by_org ON conversation_records(org_id, created_at);
    CREATE INDEX IF NOT EXISTS conversation_records_by_ref ON conversation_records(org_id, external_ref);
    CREATE TABLE IF NOT EXISTS conversation_orgs (
      conversation_id TEXT NOT NULL REFERENCES conversation_records(id),
      org_id          TEXT NOT NULL REFERENCES organisations(id),
      role            TEXT NOT NULL,
      added_at        ${d.int64} NOT NULL,
      PRIMARY KEY (conversation_id, org_id)
    );
    CREATE INDEX IF NOT EXISTS conversation_orgs_by_org ON conversation_orgs(org_id);
    CREATE TABLE IF NOT EXISTS conversation_people (
      conversation_id TEXT NOT NULL REFERENCES conversation_records(id),
      user_id         TEXT NOT NULL REFERENCES users(id),
      role            TEXT NOT NULL,
      added_at        ${d.int64} NOT NULL,
      PRIMARY KEY (conversation_id, user_id)
    );
    CREATE INDEX IF NOT EXISTS conversation_people_by_user ON conversation_people(user_id);
    CREATE TABLE IF NOT EXISTS invitations (
      id              TEXT PRIMARY KEY,
      token_hash      TEXT NOT NULL UNIQUE,
      conversation_id TEXT NOT NULL REFERENCES conversation_records(id),
      email           TEXT NOT NULL,
      role            TEXT NOT NULL,
      invited_by_org  TEXT NOT NULL,
      invited_by      TEXT NOT NULL,
      created_at      ${d.int64} NOT NULL,
      expires_at      ${d.int64} NOT NULL,
      revoked_at      ${d.int64},
      user_id         TEXT,
      device_hash     TEXT
    );
    CREATE INDEX IF NOT EXISTS invitations_by_conversation ON invitations(conversation_id);
    CREATE TABLE IF NOT EXISTS invitation_codes (
      invitation_id TEXT NOT NULL REFERENCES invitations(id),
      code_hash     TEXT NOT NULL,
      expires_at    ${d.int64} NOT NULL,
      used_at       ${d.int64},
      PRIMARY KEY (invitation_id, code_hash)
    );
    CREATE TABLE IF NOT EXISTS refresh_tokens (
      token_hash TEXT PRIMARY KEY,
      family_id  TEXT NOT NULL,
      user_id    TEXT NOT NULL,
      org_id     TEXT NOT NULL,
      created_at ${d.int64} NOT NULL,
      expires_at ${d.int64} NOT NULL,
      rotated_at ${d.int64}
    );
    CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens(family_id);
    CREATE INDEX IF NOT EXISTS refresh_tokens_by_user ON refresh_tokens(user_id);
    CREATE TABLE IF NOT EXISTS revoked_families (
      family_id  TEXT PRIMARY KEY,
      user_id    TEXT NOT NULL,
      revoked_at ${d.int64} NOT NULL,
      reason     TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS support_grants (
      id              TEXT PRIMARY KEY,
      operator        TEXT NOT NULL,
      conversation_id TEXT NOT NULL,
      reason          TEXT NOT NULL,
      granted_at      ${d.int64} NOT NULL,
      expires_at      ${d.int64} NOT NULL,
      revoked_at      ${d.int64}
    );
    CREATE INDEX IF NOT EXISTS support_grants_by_conversation ON support_grants(conversation_id);
    `,
    // Deletion and retention (server/lifecycle/): each party's deleted side of a conversation, the
    // legal holds that keep a conversation from being destroyed, and each organisation's retention.
    (d) => `
    CREATE TABLE IF NOT EXISTS conversation_deleted_sides (
      conversation_id TEXT NOT NULL REFERENCES conversation_records(id),
      org_id          TEXT NOT NULL,
      deleted_by      TEXT NOT NULL,
      reason          TEXT NOT NULL,
      deleted_at      ${d.int64} NOT NULL,
      PRIMARY KEY (conversation_id, org_id)
    );
    CREATE TABLE IF NOT EXISTS conversation_legal_holds (
      conversation_id TEXT NOT NULL REFERENCES conversation_records(id),
      org_id          TEXT NOT NULL,
      set_by          TEXT NOT NULL,
      reason          TEXT NOT NULL,
      set_at          ${d.int64} NOT NULL,
      PRIMARY KEY (conversation_id, org_id)
    );
    ALTER TABLE organisations ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 365;
    `,
    // What was destroyed, shared by every node of a cluster (each node also keeps the hash-chained
    // deletion-ledger.jsonl in its data directory, which a database restore cannot roll back).
    (d) => `
    CREATE TABLE IF NOT EXISTS deletion_ledger (
      subject     TEXT NOT NULL,
      id          TEXT NOT NULL,
      reason      TEXT NOT NULL,
      recorded_at ${d.int64} NOT NULL,
      PRIMARY KEY (subject, id)
    );
    `,
    // Consent to membership: an organisation invites an address, the person accepts while signed
    // in (never a silent add). Sessions opened by a conversation invitation link are scoped to
    // that conversation, and stay so when refreshed.
    (d) => `
    CREATE TABLE IF NOT EXISTS member_invitations (
      id          TEXT PRIMARY KEY,
      org_id      TEXT NOT NULL REFERENCES organisations(id),
      email       TEXT NOT NULL,
      role        TEXT NOT NULL,
      invited_by  TEXT NOT NULL,
      created_at  ${d.int64} NOT NULL,
      expires_at  ${d.int64} NOT NULL,
      accepted_at ${d.int64},
      accepted_by TEXT,
      revoked_at  ${d.int64}
    );
    CREATE INDEX IF NOT EXISTS member_invitations_by_email ON member_invitations(email);
    CREATE INDEX IF NOT EXISTS member_invitations_by_org ON member_invitations(org_id);
    ALTER TABLE refresh_tokens ADD COLUMN conversation_scope TEXT;
    `,
    // Security keys and passkeys (WebAuthn): several per person, each with the name they gave it,
    // its public key and signature counter. Only public material is stored.
    (d) => `
    CREATE TABLE IF NOT EXISTS webauthn_credentials (
      id           TEXT PRIMARY KEY,
      user_id      TEXT NOT NULL REFERENCES users(id),
      name         TEXT NOT NULL,
      public_key   ${d.bytes} NOT NULL,
      counter      ${d.int64} NOT NULL,
      transports   TEXT NOT NULL DEFAULT '[]',
      created_at   ${d.int64} NOT NULL,
      last_used_at ${d.int64}
    );
    CREATE INDEX IF NOT EXISTS webauthn_credentials_by_user ON webauthn_credentials(user_id);
    ALTER TABLE organisations ADD COLUMN require_security_key ${d.boolean} NOT NULL DEFAULT FALSE;
    `,
    // Sign-ups waiting for their mailbox to confirm them: the account and organisation exist only
    // once the mailed link is used (sign-up answers alike for every address: no enumeration).
    (d) => `
    CREATE TABLE IF NOT EXISTS pending_signups (
      token_hash    TEXT PRIMARY KEY,
      email         TEXT NOT NULL,
      name          TEXT NOT NULL,
      organisation  TEXT NOT NULL,
      password_hash TEXT NOT NULL,
      created_at    ${d.int64} NOT NULL,
      expires_at    ${d.int64} NOT NULL
    );
    CREATE INDEX IF NOT EXISTS pending_signups_by_expiry ON pending_signups(expires_at);
    CREATE INDEX IF NOT EXISTS pending_signups_by_email ON pending_signups(email);
    `,
    // The refresh-reuse grace: a rotated token names the successor it was rotated into, and
    // records when its one retry (a lost answer) was granted, or that it may have none.
    (d) => `
    ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
    ALTER TABLE refresh_tokens ADD COLUMN grace_used_at ${d.int64};
    `,
  ],
};
