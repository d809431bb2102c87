// Time travel from the SDK: read a conversation as it was at a past sequence number or moment,
// page its change points for a timeline, and restore it to a past point. These go over the HTTP
// API (history is not on the socket), with the same token the socket uses.

import type { ConversationStatus, ReadMessage } from "../protocol/index.ts";
import { ParleyError } from "./errors.ts";

/** A point in a conversation's history: a sequence number, or a moment (Date, ISO 8601 string or ms since the epoch). */
export type HistoryPoint = { seq: number } | { at: Date | string | number };

/** A conversation as it was at a point. */
export interface ConversationAtPoint {
  /** The last change included (0: before the first change). */
  seq: number;
  /** When that change was committed (ms since the epoch), or null for seq 0. */
  at: number | null;
  /** The conversation's latest sequence number now. */
  headSeq: number;
  /** Messages as they were, oldest first, attributed to their writers, retractions applied. */
  items: ReadMessage[];
  /** The shared notes as they were. */
  notes: string;
  /** The conversation's status now, from the server's directory (never from the document). */
  status: ConversationStatus;
  /** The Yjs state as it was (apply it to an empty Y.Doc to inspect it). */
  state: Uint8Array;
}

/** One change point on a conversation's timeline. */
export interface ChangePoint {
  seq: number;
  /** Commit time, ms since the epoch. */
  at: number;
  /** Who made the change. */
  actor: { user: string; org: string };
  /** True when the change was a restore to a past point. */
  restore: boolean;
  /** Size of the change in bytes. */
  size: number;
}

/** A page of change points; pass `nextCursor` as `after` while `hasMore`. */
export interface ChangePage {
  items: ChangePoint[];
  nextCursor: number;
  hasMore: boolean;
}

/** What a restore committed. */
export interface RestoreResult {
  /** Sequence number of the restoring change (the current one when nothing differed). */
  seq: number;
  /** False when the conversation already matched the past point. */
  changed: boolean;
  /** The point restored to. */
  restoredTo: { seq: number; at: number | null };
}

/** Options for {@link HistoryApi.changes}. */
export interface ChangesOptions {
  /** Start after this sequence number (default 0). */
  after?: number;
  /** Page size, 1-200 (default 50). */
  limit?: number;
}

/** The HTTP base URL for a socket URL: same host, http(s), no path (`wss://host/ws` → `https://host`). */
export function apiUrlFor(socketUrl: string): string {
  const url = new URL(socketUrl);
  const protocol = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol;
  return `${protocol}//${url.host}`;
}

function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function pointParams(point: HistoryPoint): { seq: number } | { at: string | number } {
  if ("seq" in point) return { seq: point.seq };
  return { at: point.at instanceof Date ? point.at.toISOString() : point.at };
}

/** The history endpoints, called with a bearer token. */
export class HistoryApi {
  private readonly baseUrl: string;
  private readonly token: () => string | Promise<string>;

  constructor(baseUrl: string, token: () => string | Promise<string>) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  /** The conversation as it was at `point`. */
  async history(conversationId: string, point: HistoryPoint): Promise<ConversationAtPoint> {
    const params = pointParams(point);
    const query = "seq" in params ? `seq=${params.seq}` : `at=${encodeURIComponent(String(params.at))}`;
    const body = await this.request<Omit<ConversationAtPoint, "state"> & { state: string }>("GET", `${this.path(conversationId)}/history?${query}`);
    return { ...body, state: base64ToBytes(body.state) };
  }

  /** A page of the conversation's change points, oldest first. */
  changes(conversationId: string, options: ChangesOptions = {}): Promise<ChangePage> {
    return this.request("GET", `${this.path(conversationId)}/changes?after=${options.after ?? 0}&limit=${options.limit ?? 50}`);
  }

  /** Restores the conversation to `point` as a new change attributed to you. */
  restore(conversationId: string, point: HistoryPoint): Promise<RestoreResult> {
    return this.request("POST", `${this.path(conversationId)}/restore`, pointParams(point));
  }

  private path(conversationId: string): string {
    return `${this.baseUrl}/v1/conversations/${encodeURIComponent(conversationId)}`;
  }

  private async request<T>(method: string, url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const parsed = (await response.json().catch(() => null)) as (T & { error?: { code: number; message: string } }) | null;
    if (!response.ok || parsed === null) {
      throw new ParleyError(parsed?.error?.code ?? response.status, parsed?.error?.message ?? `HTTP ${response.status}`);
    }
    return parsed;
  }
}
