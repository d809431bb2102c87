// Applies the per-address cap on open sockets (server/limits/connection-limits.ts) to both socket
// routes the same way: a full address gets 429 at the upgrade; a slot is taken when the socket
// opens (open and close always pair up, so slots never leak) and given back when it closes.

import { CloseCode, ErrorCode } from "../../protocol/index.ts";
import type { ConnectionLimits } from "../limits/connection-limits.ts";
import type { UWS } from "../platform/uws.ts";
import type { ClientSession } from "./client-session.ts";

const held = new WeakSet<ClientSession>();

/** Answers 429 and returns true when `ip` already has its most sockets open. */
export function refuseWhenFull(res: UWS.HttpResponse, limits: ConnectionLimits | undefined, ip: string): boolean {
  if (!limits || limits.hasRoom(ip)) return false;
  res.cork(() => {
    res.writeStatus("429 Too Many Requests");
    res.writeHeader("Retry-After", "5");
    res.writeHeader("Content-Type", "application/json; charset=utf-8");
    res.end(JSON.stringify({ error: { code: ErrorCode.RateLimited, message: `at most ${limits.maxPerAddress} open connections per address` } }));
  });
  return true;
}

/** Takes a slot for an opening socket; closes it (reconnect later) when the address is full. */
export function takeSlot(session: ClientSession, limits: ConnectionLimits | undefined): void {
  if (!limits) return;
  if (limits.acquire(session.remoteAddress)) held.add(session);
  else session.close(CloseCode.RateLimited, "too many open connections from this address");
}

/** Gives back the slot of a closed socket, if it held one. */
export function giveSlot(session: ClientSession, limits: ConnectionLimits | undefined): void {
  if (limits && held.delete(session)) limits.release(session.remoteAddress);
}
