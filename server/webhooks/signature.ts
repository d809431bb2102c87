// Webhook signatures: `Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
// keyed with the endpoint's secret. The timestamp is inside the MAC, so a receiver that rejects
// timestamps outside the replay window (5 minutes) cannot be fed an old delivery again.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** The header carrying the signature. */
export const SIGNATURE_HEADER = "Parley-Signature";
/** Receivers should reject signatures whose timestamp is further than this from their clock. */
export const REPLAY_WINDOW_SECONDS = 300;
/** Webhook secrets look like `whsec_<43 base64url chars>` (256 bits). */
export const SECRET_PREFIX = "whsec_";

/** A new endpoint secret. */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64url")}`;
}

function mac(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

/** The signature header value for `body` sent at `timestamp` (unix seconds). */
export function signPayload(secret: string, body: string, timestamp: number): string {
  return `t=${timestamp},v1=${mac(secret, timestamp, body)}`;
}

/**
 * Checks a signature header as a receiver should: the timestamp within the replay window of
 * `nowSeconds`, and one `v1` value matching (compared in constant time).
 */
export function verifySignature(secret: string, body: string, header: string, nowSeconds: number, toleranceSeconds = REPLAY_WINDOW_SECONDS): boolean {
  let timestamp: number | null = null;
  const candidates: string[] = [];
  for (const part of header.split(",")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === "t" && value && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === "v1" && value && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (timestamp === null || Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(mac(secret, timestamp, body), "hex");
  return candidates.some((candidate) => timingSafeEqual(Buffer.from(candidate, "hex"), expected));
}
