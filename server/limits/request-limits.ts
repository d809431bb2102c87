// The HTTP layers of abuse limits: requests per client address, per signed-in account, per API
// key and per organisation, each its own budget, so one noisy caller is refused while everyone
// else keeps being served. The address layer runs before credentials are read (a flood of bad
// tokens costs only the address's budget); the others once the caller is known.

import { RateLimiterRes } from "rate-limiter-flexible";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import { addressKey } from "./address-key.ts";
import type { LimiterBackend } from "./limiter-backend.ts";

/** Requests allowed per window, for each layer. */
export interface RequestLimitSettings {
  windowSeconds: number;
  perAddress: number;
  perAccount: number;
  perApiKey: number;
  perOrganisation: number;
}

/** The layer that refused a request. */
export type LimitLayer = "address" | "account" | "apiKey" | "organisation" | "connections";

/** A request refused by a rate limit: 429 with Retry-After, in the usual error shape. */
export class RateLimitError extends ParleyError {
  constructor(
    readonly layer: LimitLayer,
    readonly retryAfterSeconds: number,
    message = `${LAYER_TEXT[layer]}; try again in ${retryAfterSeconds} s`,
  ) {
    super(ErrorCode.RateLimited, message);
  }
}

const LAYER_TEXT: Record<LimitLayer, string> = {
  address: "too many requests from your address",
  account: "too many requests for your account",
  apiKey: "too many requests with this API key",
  organisation: "too many requests for your organisation",
  connections: "too many open connections from your address",
};

/** Who is calling, once known: a person for an organisation, or an organisation's API key. */
export type LimitedCaller = { kind: "user"; userId: string; orgId: string } | { kind: "apiKey"; keyId: string; orgId: string };

/** The layered HTTP limits of one node (counting in the backend, so across nodes with Redis). */
export class RequestLimits {
  private readonly address;
  private readonly account;
  private readonly apiKey;
  private readonly organisation;

  constructor(backend: LimiterBackend, settings: RequestLimitSettings) {
    const window = settings.windowSeconds;
    this.address = backend.create("http-address:", { points: settings.perAddress, durationSeconds: window });
    this.account = backend.create("http-account:", { points: settings.perAccount, durationSeconds: window });
    this.apiKey = backend.create("http-apikey:", { points: settings.perApiKey, durationSeconds: window });
    this.organisation = backend.create("http-org:", { points: settings.perOrganisation, durationSeconds: window });
  }

  /** Counts a request from `ip`; throws {@link RateLimitError} past the address's budget. */
  async admitAddress(ip: string): Promise<void> {
    await take(this.address, addressKey(ip), "address");
  }

  /** Counts a request of a known caller against its own and its organisation's budget. */
  async admitCaller(caller: LimitedCaller): Promise<void> {
    if (caller.kind === "user") await take(this.account, caller.userId, "account");
    else await take(this.apiKey, caller.keyId, "apiKey");
    await take(this.organisation, caller.orgId, "organisation");
  }
}

async function take(limiter: { consume(key: string): Promise<RateLimiterRes> }, key: string, layer: LimitLayer): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (refusal) {
    if (refusal instanceof RateLimiterRes) throw new RateLimitError(layer, Math.max(1, Math.ceil(refusal.msBeforeNext / 1000)));
    throw refusal;
  }
}
