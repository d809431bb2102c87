// Sign-in sessions: refresh-token families, their rotation (reuse revokes the family, but for one
// retry within the reuse grace) and sign-out.

import type { RefreshOutcome } from "./directory-types.ts";

/** Refresh-token families (sign-in sessions). */
export interface SessionDirectory {
  /**
   * Stores a refresh token (its hash) in a family (one sign-in). `conversationScope`: the one
   * conversation a session opened by an invitation link may reach (kept through rotation).
   */
  insertRefreshToken(
    token: { tokenHash: string; familyId: string; userId: string; orgId: string; expiresAt: number; conversationScope?: string | null },
    now: number,
  ): Promise<void>;
  /**
   * Rotates a refresh token: the presented one is spent and `nextHash` issued in its family. A
   * token presented twice means it was stolen (or replayed): the whole family is revoked, except
   * for one retry of the family's newest spent token within `reuseGraceMs` of its rotation while
   * its successor is unused (the answer was lost on the way): that successor is retired and
   * `nextHash` issued instead. A second retry, a retry after the grace or after the successor
   * was used, and the retired successor itself all still revoke the family.
   */
  rotateRefreshToken(tokenHash: string, nextHash: string, nextExpiresAt: number, now: number, reuseGraceMs: number): Promise<RefreshOutcome>;
  /** Signs a session family out (idempotent). */
  revokeFamily(familyId: string, userId: string, reason: string, now: number): Promise<void>;
  /** Revokes every session family of a person; returns the family ids. */
  revokeUserSessions(userId: string, reason: string, now: number): Promise<string[]>;
  isFamilyRevoked(familyId: string): Promise<boolean>;
}
