// Verifies one conversation's audit chain as stored: reads the log page by page through the
// Store seam (any backend) and feeds the chain verifier, so memory stays flat on long logs.

import type { Store } from "../store/store.ts";
import { ChainVerifier, type ChainVerification, type ChainVerifierOptions } from "./audit-chain.ts";

export interface VerifyConversationOptions extends ChainVerifierOptions {
  /** Entries read per store call. */
  pageSize?: number;
}

/**
 * Walks the whole chain from seq 1 and reports the first broken entry. Also checks that the
 * chain reaches the head the store records, so entries cut off the end do not go unnoticed.
 */
export async function verifyConversation(
  store: Store,
  conversation: string,
  auditKey: Uint8Array,
  options: VerifyConversationOptions = {},
): Promise<ChainVerification> {
  const pageSize = options.pageSize ?? 1000;
  const verifier = new ChainVerifier(conversation, auditKey, options);
  let after = 0;
  for (;;) {
    const page = await store.readEntries(conversation, after, pageSize);
    for (const entry of page) {
      if (!verifier.push(entry)) return verifier.result();
    }
    if (page.length < pageSize) break;
    after = page[page.length - 1].seq;
  }
  const { headSeq } = await store.loadDocument(conversation);
  const reached = verifier.head.seq;
  if (headSeq > reached) verifier.fail(reached + 1, `log ends at seq ${reached} but the conversation head is seq ${headSeq}`);
  else if (headSeq < reached) verifier.fail(headSeq + 1, `entries after the conversation head seq ${headSeq}`);
  return verifier.result();
}
