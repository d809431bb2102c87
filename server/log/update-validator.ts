// Checks a Yjs update as bytes before it may enter the log: it must decode, stay within the size
// limit, and every message it adds must name its sender as author. No Y.Doc is built; the
// decode is the same one Yjs does when merging, so a malformed update fails here, not later.

import * as Y from "yjs";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../errors.ts";

/** The sender an update's message authorship must match. */
export interface UpdateAuthor {
  user: string;
  org: string;
}

/** What validation learned about an update. */
export interface ValidatedUpdate {
  /** True when the update changes nothing (no structs, no deletions): acked without storing. */
  empty: boolean;
}

function hasForeignAuthor(value: unknown, author: UpdateAuthor): boolean {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  if (!("authorUser" in record) && !("authorOrg" in record)) return false;
  return record.authorUser !== author.user || record.authorOrg !== author.org;
}

/**
 * Validates an update; throws {@link ParleyError} UpdateTooLarge or InvalidUpdate. `author` null
 * skips the authorship check: only for updates the server built from the conversation's own
 * past content (a restore brings back messages in their original authors' names).
 */
export function validateUpdate(update: Uint8Array, author: UpdateAuthor | null, maxBytes: number): ValidatedUpdate {
  if (update.length > maxBytes) {
    throw new ParleyError(ErrorCode.UpdateTooLarge, `update of ${update.length} bytes exceeds ${maxBytes}`);
  }
  let decoded: ReturnType<typeof Y.decodeUpdate>;
  try {
    decoded = Y.decodeUpdate(update);
  } catch {
    throw new ParleyError(ErrorCode.InvalidUpdate, "update could not be decoded");
  }
  for (const struct of decoded.structs) {
    // Messages are plain objects in a Y.Array (ContentAny): any that carries authorship must carry
    // the sender's, so nobody can post in someone else's name.
    const content = (struct as { content?: unknown }).content;
    if (author && content instanceof Y.ContentAny) {
      for (const value of content.arr) {
        if (hasForeignAuthor(value, author)) {
          throw new ParleyError(ErrorCode.InvalidUpdate, "a message in this update names another author");
        }
      }
    }
  }
  return { empty: decoded.structs.length === 0 && decoded.ds.clients.size === 0 };
}
