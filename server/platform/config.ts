// Configuration: parsed and validated once, from the environment, with clear errors. Nothing
// else in the server reads process.env; the composition root hands each module its part.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { type ProxyTrust, parseProxyTrust } from "./client-address.ts";

/** Asymmetric JWS algorithms a host may sign with; HMAC and `none` are never accepted. */
export const HOST_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

/** How host-application tokens are checked and mapped (from configuration). */
export interface HostTokenSettings {
  /** The host's JWKS endpoint (https:// in production), or null when `jwksFile` is used. */
  jwksUrl: string | null;
  /** A JWKS document on disk, re-read when it changes, or null. */
  jwksFile: string | null;
  issuer: string;
  audience: string;
  /** Accepted `alg` values, a subset of {@link HOST_TOKEN_ALGORITHMS}. */
  algorithms: string[];
  /** Claim holding the Parley person id (default `sub`). */
  userClaim: string;
  /** Claim holding the Parley organisation id (default `org`). */
  orgClaim: string;
  /** Least time between two JWKS fetches triggered by an unknown key id. */
  jwksCooldownMs: number;
  /** Longest a fetched JWKS is used before it is fetched again. */
  jwksMaxAgeMs: number;
}

/** Every setting the server runs with; defaults are the embedded single-node setup. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /**
   * Where the server's own keys live (token signing, audit HMAC, secrets): PARLEY_KEYS_DIR,
   * default <dataDir>/keys. Every node of a cluster must read the same key files.
   */
  keysDir: string;
  /** Audit trail (server/audit/): signed checkpoints every PARLEY_CHECKPOINT_INTERVAL_SECONDS (default 60). */
  audit: { checkpointIntervalSeconds: number };
  /**
   * Encryption at rest (server/crypto/master-key.ts): PARLEY_MASTER_KEY (base64 of 32 bytes) or
   * PARLEY_MASTER_KEY_FILE; neither: <keysDir>/master.key, generated on the first start.
   */
  masterKey: { value: string | null; file: string | null };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  tokens: {
    issuer: string;
    audience: string;
  };
  /**
   * A host application whose own tokens are accepted (PARLEY_HOST_JWKS_URL or _FILE, with
   * PARLEY_HOST_TOKEN_ISSUER and _AUDIENCE); null: only Parley's tokens and API keys.
   */
  hostTokens: HostTokenSettings | null;
  /**
   * Browser Origins that may call the HTTP API (CORS) and open sockets: one list for both
   * (PARLEY_ALLOWED_ORIGINS); empty means any origin (credentials are bearer tokens, never cookies).
   */
  allowedOrigins: string[];
  /**
   * GET /metrics (Prometheus): behind PARLEY_METRICS_TOKEN on the main port, and/or without a
   * token on a separate PARLEY_METRICS_ADDRESS (host:port) meant to be reachable only privately.
   */
  metrics: { token: string | null; address: { host: string; port: number } | null };
  limits: {
    /** Largest WebSocket frame accepted; larger ones close the socket with 4413. */
    maxFrameBytes: number;
    /** Largest Yjs update accepted; larger ones are refused with an error frame. */
    maxUpdateBytes: number;
    /** Largest awareness update accepted. */
    maxAwarenessBytes: number;
    /** Conversations one socket may have joined at once. */
    maxConversationsPerSocket: number;
    /** Time allowed between socket open and a successful `auth`. */
    authTimeoutMs: number;
    /** Bytes a socket may send before it is authenticated (buffered frames included). */
    maxPreAuthBytes: number;
    /** Per-socket send buffer; a consumer slower than this is disconnected (it resyncs). */
    maxBackpressureBytes: number;
    /** Sustained frames per second per socket, with a burst of twice that. */
    maxFramesPerSecond: number;
    /** Seconds of silence before uWS pings, then closes, a socket. */
    idleTimeoutSeconds: number;
    /** Open WebSockets and event streams per client address on one node (IPv6 counted per /64). */
    maxConnectionsPerAddress: number;
    /**
     * Bounds of a conversation document, refused at write time (server/writes/update-validator.ts):
     * PARLEY_MAX_DOC_DEPTH nesting of shared types and values below a root (default 64),
     * PARLEY_MAX_DOC_ITEMS clock units ever inserted, deleted ones included (default 10 000 000),
     * PARLEY_MAX_DOC_MB size of the merged state (default 64 MiB).
     */
    document: { maxDepth: number; maxItems: number; maxBytes: number };
    /**
     * Load shedding (server/writes/write-admission.ts): new writes are refused (y-websocket: close
     * 1013; Parley: error 5006, retried) while the event loop was busy at least
     * PARLEY_SHED_LOOP_PERCENT of the last PARLEY_SHED_WINDOW_MS (0: never), or more than
     * PARLEY_SHED_MAX_QUEUED appends wait for the store (0: no bound).
     */
    shedding: { loopUtilisation: number | null; windowMs: number; maxQueuedAppends: number | null };
  };
  /**
   * HTTP request rate limits (server/limits/): requests per window for each layer, counted in
   * Redis when REDIS_URL is set (they hold across nodes), in memory otherwise.
   */
  rateLimits: { windowSeconds: number; perAddress: number; perAccount: number; perApiKey: number; perOrganisation: number };
  store: {
    /**
     * postgres:// URL of the database several nodes share (DATABASE_URL); null: one node, SQLite
     * files in the data directory. The directory (accounts and access) follows the same choice.
     */
    databaseUrl: string | null;
    sqliteSynchronous: "full" | "normal";
    /** Most appends carried by one group commit. */
    maxBatch: number;
    /** Extra wait before a group commit to gather more appends (0: next tick). */
    commitWindowMs: number;
    /** Compact a conversation once this many updates follow its latest snapshot. */
    compactAfterUpdates: number;
  };
  /** The bus between nodes: in-process unless REDIS_URL is set. */
  bus: {
    /** redis:// or rediss:// (TLS) URL; null: one node, in-process bus. */
    redisUrl: string | null;
    /** Prefix of every Redis channel, so several deployments (or test runs) can share one Redis. */
    channelPrefix: string;
    /** Sharded pub/sub (SSUBSCRIBE/SPUBLISH) for a Redis Cluster. */
    sharded: boolean;
    /** This node's id on the bus (random per start when empty); must differ between nodes. */
    nodeId: string;
    /** How long a sequence gap may wait for a late bus message before the store is read. */
    gapGraceMs: number;
  };
  /** Memory budget for cached conversation states (least recently used evicted first). */
  cacheBytes: number;
  /** Time allowed for a graceful shutdown before the process exits anyway. */
  shutdownTimeoutMs: number;
  http: {
    /** Largest request body accepted. */
    maxBodyBytes: number;
    /**
     * Which proxies may tell the client's address in X-Forwarded-For (PARLEY_TRUST_PROXY): none,
     * a hop count, or their addresses; the client is the rightmost hop that is not one of them.
     */
    proxyTrust: ProxyTrust;
    /** Folder of the built web app served at `/` (`npm run build:web` writes it). */
    webAppDir: string;
  };
  identity: {
    /** Base URL people reach this server at (invitation links). */
    publicUrl: string;
    accessTokenTtlSeconds: number;
    refreshTokenTtlSeconds: number;
    /** How long a rotated refresh token may be retried once, when the rotation's answer was lost (0: never). */
    refreshReuseGraceSeconds: number;
    /** argon2id parameters; at least OWASP's minimum (19 MiB, t=2, p=1). */
    argon2: { memoryKiB: number; timeCost: number; parallelism: number };
    /** Password hashes running at once; beyond that (and a short queue) sign-ins get 429. */
    maxConcurrentHashes: number;
    /** Lowest zxcvbn score (0-4) a new password must reach. */
    passwordMinScore: 0 | 1 | 2 | 3 | 4;
    /** smtp(s)://user:pass@host:port; unset: mail goes to <dataDir>/outbox and the log. */
    smtpUrl: string | null;
    mailFrom: string;
    /** How long the outbox (no SMTP) keeps a written message before the retention sweep removes it. */
    outboxRetentionDays: number;
    /**
     * DKIM signing of outgoing mail (PARLEY_DKIM_DOMAIN, PARLEY_DKIM_SELECTOR default "parley",
     * PARLEY_DKIM_KEY_FILE default <keysDir>/dkim-<selector>.pem); null: unsigned.
     */
    dkim: { domain: string; selector: string; keyFile: string } | null;
  };
  /** Partner events (stream, paging) and webhooks. */
  events: {
    /** Events older than this are removed; a cursor before them gets EventCursorExpired. */
    retentionDays: number;
    /** Wait after a commit before deriving message and notes events (a burst costs one derivation). */
    debounceMs: number;
    /** Notes must stay unchanged this long before `notes.changed` is recorded. */
    notesQuietMs: number;
    /** Heartbeat comment interval on SSE streams. */
    heartbeatSeconds: number;
    webhooks: {
      /** Deliver to private, loopback and link-local addresses, and over plain http (development only). */
      allowPrivate: boolean;
      /** Whole-request timeout of one delivery. */
      timeoutMs: number;
      /** First retry delay; doubles per attempt (with jitter) up to retryMaxDelayMs. */
      retryBaseMs: number;
      retryMaxDelayMs: number;
      /** How long one event is retried before it is parked in the dead-letter list (at least 24 h). */
      retryWindowHours: number;
      /** An endpoint failing without a single success this long is disabled. */
      disableAfterHours: number;
    };
  };
  /**
   * Scheduled backups (server/backup/backup-scheduler.ts): PARLEY_BACKUP_DIR enables them; on
   * Postgres one node of the cluster takes each (data + keyring pair), and the drill restores into
   * a scratch database; keepKeyringDays (Postgres) deletes keyring files long before their
   * data files (null, from 0: a keyring file goes with its data file); backups null: none (take them with `parley backup`).
   */
  backups: { dir: string; everyMinutes: number; keep: { daily: number; weekly: number; monthly: number }; drillEvery: number; keepKeyringDays: number | null } | null;
  /** Deletion and retention (server/lifecycle/). */
  lifecycle: {
    /** How often the retention sweep looks for conversations inactive past their parties' retention. */
    retentionSweepMs: number;
  };
}

/** Thrown when the environment holds an invalid setting; the message names the variable. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")} (got "${raw}")`);
  }
  return raw as T;
}

function sheddingConfig(env: Env): Config["limits"]["shedding"] {
  const percent = int(env, "PARLEY_SHED_LOOP_PERCENT", 98, 0, 100);
  const queued = int(env, "PARLEY_SHED_MAX_QUEUED", 50_000, 0, 10_000_000);
  return {
    loopUtilisation: percent === 0 ? null : percent / 100,
    windowMs: int(env, "PARLEY_SHED_WINDOW_MS", 1000, 10, 60_000),
    maxQueuedAppends: queued === 0 ? null : queued,
  };
}

function list(env: Env, name: string): string[] {
  return (env[name] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

const MiB = 1024 * 1024;

// `npm run build:web` writes the web app to dist/web-app at the package root, whatever the cwd;
// this module runs from server/platform/ (source) or dist/server/platform/ (compiled).
const SERVER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PACKAGE_ROOT = path.basename(path.dirname(SERVER_DIR)) === "dist" ? path.resolve(SERVER_DIR, "../..") : path.resolve(SERVER_DIR, "..");
const DEFAULT_WEB_APP_DIR = path.join(PACKAGE_ROOT, "dist", "web-app");

function dkimConfig(env: Env, cwd: string, keysDir: string, mailFrom: string): Config["identity"]["dkim"] {
  const domain = (env.PARLEY_DKIM_DOMAIN ?? "").trim().toLowerCase();
  if (!domain) {
    if (env.PARLEY_DKIM_KEY_FILE || env.PARLEY_DKIM_SELECTOR) throw new ConfigError("PARLEY_DKIM_KEY_FILE and PARLEY_DKIM_SELECTOR need PARLEY_DKIM_DOMAIN");
    return null;
  }
  const selector = (env.PARLEY_DKIM_SELECTOR || "parley").trim();
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  const isDnsName = (name: string) => name.length <= 253 && name.split(".").every((part) => label.test(part));
  if (!isDnsName(domain)) throw new ConfigError(`PARLEY_DKIM_DOMAIN must be a domain name (got "${domain}")`);
  if (!label.test(selector)) throw new ConfigError(`PARLEY_DKIM_SELECTOR must be a DNS label (got "${selector}")`);
  // DMARC passes only when the signing domain aligns with the From address's domain.
  const fromDomain = (/@([^>\s]+)>?\s*$/.exec(mailFrom)?.[1] ?? "").toLowerCase();
  if (fromDomain !== domain && !fromDomain.endsWith(`.${domain}`)) {
    throw new ConfigError(`PARLEY_DKIM_DOMAIN (${domain}) must be the domain of PARLEY_MAIL_FROM (${fromDomain || mailFrom}) or a parent of it`);
  }
  const keyFile = env.PARLEY_DKIM_KEY_FILE ? path.resolve(cwd, env.PARLEY_DKIM_KEY_FILE) : path.join(keysDir, `dkim-${selector}.pem`);
  return { domain, selector, keyFile };
}

function identityConfig(env: Env, cwd: string, keysDir: string): Config["identity"] {
  const port = env.PORT || "8787";
  // eslint-disable-next-line @microsoft/sdl/no-insecure-url -- the development default (the listening address itself); deployments set an https PARLEY_PUBLIC_URL
  const publicUrl = (env.PARLEY_PUBLIC_URL || `http://${env.HOST || "127.0.0.1"}:${port}`).replace(/\/+$/, "");
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`PARLEY_PUBLIC_URL must be an absolute URL (got "${publicUrl}")`);
  }
  const smtpUrl = env.PARLEY_SMTP_URL || null;
  if (smtpUrl && !/^smtps?:\/\//.test(smtpUrl)) throw new ConfigError("PARLEY_SMTP_URL must start with smtp:// or smtps://");
  const mailFrom = env.PARLEY_MAIL_FROM || "Parley <no-reply@parley.invalid>";
  return {
    publicUrl,
    accessTokenTtlSeconds: int(env, "PARLEY_ACCESS_TOKEN_TTL_SECONDS", 900, 30, 86_400),
    refreshTokenTtlSeconds: int(env, "PARLEY_REFRESH_TOKEN_TTL_DAYS", 30, 1, 365) * 86_400,
    refreshReuseGraceSeconds: int(env, "PARLEY_REFRESH_REUSE_GRACE_SECONDS", 30, 0, 300),
    argon2: {
      memoryKiB: int(env, "PARLEY_ARGON2_MEMORY_KIB", 19_456, 19_456, 4 * 1024 * 1024),
      timeCost: int(env, "PARLEY_ARGON2_TIME_COST", 2, 2, 20),
      parallelism: int(env, "PARLEY_ARGON2_PARALLELISM", 1, 1, 16),
    },
    maxConcurrentHashes: int(env, "PARLEY_MAX_CONCURRENT_HASHES", 4, 1, 64),
    passwordMinScore: int(env, "PARLEY_PASSWORD_MIN_SCORE", 3, 0, 4) as 0 | 1 | 2 | 3 | 4,
    smtpUrl,
    mailFrom,
    outboxRetentionDays: int(env, "PARLEY_OUTBOX_RETENTION_DAYS", 30, 1, 3650),
    dkim: dkimConfig(env, cwd, keysDir, mailFrom),
  };
}

function eventsConfig(env: Env): Config["events"] {
  const retryWindowHours = int(env, "PARLEY_WEBHOOK_RETRY_HOURS", 24, 24, 24 * 30);
  const disableAfterHours = int(env, "PARLEY_WEBHOOK_DISABLE_AFTER_HOURS", 72, 24, 24 * 90);
  if (disableAfterHours < retryWindowHours) throw new ConfigError("PARLEY_WEBHOOK_DISABLE_AFTER_HOURS must not be below PARLEY_WEBHOOK_RETRY_HOURS");
  return {
    retentionDays: int(env, "PARLEY_EVENT_RETENTION_DAYS", 30, 1, 3650),
    debounceMs: int(env, "PARLEY_EVENT_DEBOUNCE_MS", 100, 0, 10_000),
    notesQuietMs: int(env, "PARLEY_EVENT_NOTES_QUIET_MS", 2000, 0, 600_000),
    heartbeatSeconds: int(env, "PARLEY_EVENT_HEARTBEAT_SECONDS", 15, 1, 300),
    webhooks: {
      allowPrivate: oneOf(env, "PARLEY_WEBHOOK_ALLOW_PRIVATE", "false", ["true", "false"]) === "true",
      timeoutMs: int(env, "PARLEY_WEBHOOK_TIMEOUT_MS", 10_000, 100, 60_000),
      retryBaseMs: int(env, "PARLEY_WEBHOOK_RETRY_BASE_MS", 5000, 10, 3_600_000),
      retryMaxDelayMs: int(env, "PARLEY_WEBHOOK_RETRY_MAX_DELAY_MS", 3_600_000, 1000, 6 * 3_600_000),
      retryWindowHours,
      disableAfterHours,
    },
  };
}

/** PARLEY_TRUST_PROXY: false | true (one proxy) | a hop count | proxy addresses and CIDR ranges, comma-separated. */
function proxyTrustSetting(env: Env): ProxyTrust {
  try {
    return parseProxyTrust(env.PARLEY_TRUST_PROXY ?? "false");
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

function masterKeySetting(env: Env, cwd: string): Config["masterKey"] {
  const value = env.PARLEY_MASTER_KEY || null;
  const file = env.PARLEY_MASTER_KEY_FILE ? path.resolve(cwd, env.PARLEY_MASTER_KEY_FILE) : null;
  if (value && file) throw new ConfigError("set PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE, not both");
  if (value && Buffer.from(value, "base64").byteLength !== 32) throw new ConfigError("PARLEY_MASTER_KEY must be the base64 of 32 bytes");
  return { value, file };
}

function hostTokenConfig(env: Env, cwd: string, parleyIssuer: string): HostTokenSettings | null {
  const jwksUrl = env.PARLEY_HOST_JWKS_URL || null;
  const jwksFile = env.PARLEY_HOST_JWKS_FILE ? path.resolve(cwd, env.PARLEY_HOST_JWKS_FILE) : null;
  if (!jwksUrl && !jwksFile) return null;
  if (jwksUrl && jwksFile) throw new ConfigError("set PARLEY_HOST_JWKS_URL or PARLEY_HOST_JWKS_FILE, not both");
  if (jwksUrl && !/^https?:\/\/./.test(jwksUrl)) throw new ConfigError("PARLEY_HOST_JWKS_URL must be an http(s):// URL");
  const issuer = env.PARLEY_HOST_TOKEN_ISSUER ?? "";
  const audience = env.PARLEY_HOST_TOKEN_AUDIENCE ?? "";
  if (!issuer || !audience) throw new ConfigError("a host JWKS needs PARLEY_HOST_TOKEN_ISSUER and PARLEY_HOST_TOKEN_AUDIENCE");
  if (issuer === parleyIssuer) throw new ConfigError("PARLEY_HOST_TOKEN_ISSUER must differ from PARLEY_TOKEN_ISSUER");
  const algorithms = env.PARLEY_HOST_TOKEN_ALGORITHMS ? list(env, "PARLEY_HOST_TOKEN_ALGORITHMS") : ["RS256"];
  for (const alg of algorithms) {
    if (!(HOST_TOKEN_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new ConfigError(`PARLEY_HOST_TOKEN_ALGORITHMS: "${alg}" is not one of ${HOST_TOKEN_ALGORITHMS.join(", ")}`);
    }
  }
  return {
    jwksUrl,
    jwksFile,
    issuer,
    audience,
    algorithms,
    userClaim: env.PARLEY_HOST_TOKEN_USER_CLAIM || "sub",
    orgClaim: env.PARLEY_HOST_TOKEN_ORG_CLAIM || "org",
    jwksCooldownMs: int(env, "PARLEY_HOST_JWKS_COOLDOWN_MS", 30_000, 0, 3_600_000),
    jwksMaxAgeMs: int(env, "PARLEY_HOST_JWKS_MAX_AGE_SECONDS", 600, 1, 86_400) * 1000,
  };
}

const ORIGIN = /^https?:\/\/[^/\s?#]+$/;

function allowedOriginsConfig(env: Env): string[] {
  const origins = list(env, "PARLEY_ALLOWED_ORIGINS");
  if (origins.length === 1 && origins[0] === "*") return [];
  for (const origin of origins) {
    if (!ORIGIN.test(origin)) throw new ConfigError(`PARLEY_ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com (no path, no trailing slash)`);
  }
  return origins;
}

function metricsConfig(env: Env): Config["metrics"] {
  const token = env.PARLEY_METRICS_TOKEN || null;
  if (token !== null && token.length < 16) throw new ConfigError("PARLEY_METRICS_TOKEN must be at least 16 characters");
  const raw = env.PARLEY_METRICS_ADDRESS || "";
  if (!raw) return { token, address: null };
  const match = /^(.+):(\d{1,5})$/.exec(raw);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) throw new ConfigError(`PARLEY_METRICS_ADDRESS must be host:port, e.g. 127.0.0.1:9464 (got "${raw}")`);
  return { token, address: { host: match[1].replace(/^\[(.*)\]$/, "$1"), port } };
}

function backupsConfig(env: Env, cwd: string): Config["backups"] {
  if (!env.PARLEY_BACKUP_DIR) return null;
  return {
    dir: path.resolve(cwd, env.PARLEY_BACKUP_DIR),
    everyMinutes: int(env, "PARLEY_BACKUP_EVERY_MINUTES", 1440, 1, 7 * 1440),
    keep: {
      daily: int(env, "PARLEY_BACKUP_KEEP_DAILY", 7, 1, 366),
      weekly: int(env, "PARLEY_BACKUP_KEEP_WEEKLY", 4, 0, 520),
      monthly: int(env, "PARLEY_BACKUP_KEEP_MONTHLY", 12, 0, 1200),
    },
    drillEvery: int(env, "PARLEY_BACKUP_DRILL_EVERY", 7, 1, 1000),
    // A week: a key destroyed since is in no backup after it; older data files restore with the
    // newest keyring (postgres-keyring-lineage.ts). 0: a keyring file goes with its data file.
    keepKeyringDays: int(env, "PARLEY_BACKUP_KEEP_KEYRING_DAYS", 7, 0, 366) || null,
  };
}

/** Builds the configuration from environment variables (see README for the list). */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const maxFrameBytes = int(env, "PARLEY_MAX_FRAME_BYTES", 2 * MiB, 1024, 256 * MiB);
  const maxUpdateBytes = int(env, "PARLEY_MAX_UPDATE_BYTES", MiB, 64, 256 * MiB);
  if (maxUpdateBytes > maxFrameBytes) {
    throw new ConfigError("PARLEY_MAX_UPDATE_BYTES must not exceed PARLEY_MAX_FRAME_BYTES");
  }
  const databaseUrl = env.DATABASE_URL || null;
  if (databaseUrl && !/^postgres(ql)?:\/\/./.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// URL");
  }
  const redisUrl = env.REDIS_URL || null;
  if (redisUrl && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
    throw new ConfigError("REDIS_URL must be a redis:// or rediss:// URL");
  }
  const dataDir = path.resolve(cwd, env.PARLEY_DATA_DIR || "./data");
  const keysDir = env.PARLEY_KEYS_DIR ? path.resolve(cwd, env.PARLEY_KEYS_DIR) : path.join(dataDir, "keys");
  const issuer = env.PARLEY_TOKEN_ISSUER || "parley";
  return {
    host: env.HOST || "127.0.0.1",
    port: int(env, "PORT", 8787, 0, 65535),
    dataDir,
    keysDir,
    audit: { checkpointIntervalSeconds: int(env, "PARLEY_CHECKPOINT_INTERVAL_SECONDS", 60, 1, 86_400) },
    masterKey: masterKeySetting(env, cwd),
    logLevel: oneOf(env, "PARLEY_LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    tokens: {
      issuer,
      audience: env.PARLEY_TOKEN_AUDIENCE || "parley",
    },
    hostTokens: hostTokenConfig(env, cwd, issuer),
    allowedOrigins: allowedOriginsConfig(env),
    metrics: metricsConfig(env),
    limits: {
      maxFrameBytes,
      maxUpdateBytes,
      maxAwarenessBytes: int(env, "PARLEY_MAX_AWARENESS_BYTES", 64 * 1024, 256, MiB),
      maxConversationsPerSocket: int(env, "PARLEY_MAX_CONVERSATIONS_PER_SOCKET", 100, 1, 100_000),
      authTimeoutMs: int(env, "PARLEY_AUTH_TIMEOUT_MS", 5000, 100, 600_000),
      maxPreAuthBytes: int(env, "PARLEY_MAX_PREAUTH_BYTES", 64 * 1024, 1024, 16 * MiB),
      maxBackpressureBytes: int(env, "PARLEY_MAX_BACKPRESSURE_BYTES", 16 * MiB, 64 * 1024, 1024 * MiB),
      maxFramesPerSecond: int(env, "PARLEY_MAX_FRAMES_PER_SECOND", 500, 1, 1_000_000),
      idleTimeoutSeconds: int(env, "PARLEY_IDLE_TIMEOUT_SECONDS", 120, 8, 960),
      maxConnectionsPerAddress: int(env, "PARLEY_MAX_CONNECTIONS_PER_ADDRESS", 500, 1, 10_000_000),
      document: {
        maxDepth: int(env, "PARLEY_MAX_DOC_DEPTH", 64, 1, 10_000),
        maxItems: int(env, "PARLEY_MAX_DOC_ITEMS", 10_000_000, 1000, 1_000_000_000),
        maxBytes: int(env, "PARLEY_MAX_DOC_MB", 64, 1, 64 * 1024) * MiB,
      },
      shedding: sheddingConfig(env),
    },
    rateLimits: {
      windowSeconds: int(env, "PARLEY_RATE_LIMIT_WINDOW_SECONDS", 60, 1, 86_400),
      perAddress: int(env, "PARLEY_RATE_LIMIT_ADDRESS", 3000, 1, 100_000_000),
      perAccount: int(env, "PARLEY_RATE_LIMIT_ACCOUNT", 1200, 1, 100_000_000),
      perApiKey: int(env, "PARLEY_RATE_LIMIT_API_KEY", 3000, 1, 100_000_000),
      perOrganisation: int(env, "PARLEY_RATE_LIMIT_ORGANISATION", 12_000, 1, 100_000_000),
    },
    store: {
      databaseUrl,
      sqliteSynchronous: oneOf(env, "PARLEY_SQLITE_SYNCHRONOUS", "full", ["full", "normal"]),
      maxBatch: int(env, "PARLEY_COMMIT_MAX_BATCH", 1024, 1, 100_000),
      commitWindowMs: int(env, "PARLEY_COMMIT_WINDOW_MS", 0, 0, 1000),
      compactAfterUpdates: int(env, "PARLEY_COMPACT_AFTER_UPDATES", 1000, 10, 10_000_000),
    },
    bus: {
      redisUrl,
      channelPrefix: env.PARLEY_REDIS_PREFIX ?? "parley:",
      sharded: oneOf(env, "PARLEY_REDIS_CLUSTER", "false", ["true", "false"]) === "true",
      nodeId: env.PARLEY_NODE_ID ?? "",
      gapGraceMs: int(env, "PARLEY_BUS_GAP_GRACE_MS", 20, 0, 10_000),
    },
    cacheBytes: int(env, "PARLEY_CACHE_MB", 256, 1, 1024 * 1024) * MiB,
    shutdownTimeoutMs: int(env, "PARLEY_SHUTDOWN_TIMEOUT_MS", 10_000, 100, 600_000),
    http: {
      maxBodyBytes: int(env, "PARLEY_MAX_BODY_BYTES", 64 * 1024, 1024, 16 * MiB),
      proxyTrust: proxyTrustSetting(env),
      webAppDir: env.PARLEY_WEB_APP_DIR ? path.resolve(cwd, env.PARLEY_WEB_APP_DIR) : DEFAULT_WEB_APP_DIR,
    },
    identity: identityConfig(env, cwd, keysDir),
    events: eventsConfig(env),
    backups: backupsConfig(env, cwd),
    lifecycle: {
      retentionSweepMs: int(env, "PARLEY_RETENTION_SWEEP_MS", 3_600_000, 100, 7 * 24 * 3_600_000),
    },
  };
}
