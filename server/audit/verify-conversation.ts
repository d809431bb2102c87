// Verifies one audit chain as stored: reads it page by page (a conversation's log through the
// Store seam, any backend; an organisation's chain through the audit log) and feeds the chain
// verifier, so memory stays flat on long logs. Also checks that the chain reaches the head the
// store records, so entries cut off the end do not go unnoticed.

import type { Store } from "../store/store.ts";
import { type ChainHead, type ChainVerification, ChainVerifier, type ChainVerifierOptions } from "../store/audit-chain.ts";

export interface VerifyConversationOptions extends ChainVerifierOptions {
  /** Entries read per store call. */
  pageSize?: number;
}

/** What walkChain needs of a verifier: both the conversation and the organisation verifiers fit. */
export interface StreamingVerifier<E> {
  push(entry: E): boolean;
  fail(seq: number, reason: string): void;
  readonly head: ChainHead;
  result(): ChainVerification;
}

/**
 * Walks a chain from seq 1, page by page, through `verifier`, then compares the seq reached with
 * the head the store records (`headSeq`, read after the walk).
 */
export async function walkChain<E extends { seq: number }>(
  verifier: StreamingVerifier<E>,
  readPage: (afterSeq: number, limit: number) => Promise<E[]>,
  headSeq: () => Promise<number>,
  pageSize = 1000,
): Promise<ChainVerification> {
  let after = 0;
  for (;;) {
    const { entries: page, broken } = await readPageOrBreak(readPage, after, pageSize);
    for (const entry of page) {
      if (!verifier.push(entry)) return verifier.result();
    }
    if (broken) {
      verifier.fail(verifier.head.seq + 1, broken);
      return verifier.result();
    }
    if (page.length < pageSize) break;
    after = page[page.length - 1].seq;
  }
  const head = await headSeq();
  const reached = verifier.head.seq;
  if (head > reached) verifier.fail(reached + 1, `log ends at seq ${reached} but the chain head is seq ${head}`);
  else if (head < reached) verifier.fail(head + 1, `entries after the chain head seq ${head}`);
  return verifier.result();
}

/**
 * A page of entries; when the store refuses it because a record fails authenticated decryption
 * (a row edited, moved or copied on disk), the entries before that record one by one, and then
 * why the next one cannot be read: so the break is still named at the first bad entry.
 */
async function readPageOrBreak<E extends { seq: number }>(
  readPage: (afterSeq: number, limit: number) => Promise<E[]>,
  after: number,
  limit: number,
): Promise<{ entries: E[]; broken?: string }> {
  try {
    return { entries: await readPage(after, limit) };
  } catch (error) {
    if ((error as { code?: unknown }).code !== "undecryptable") throw error;
  }
  const entries: E[] = [];
  for (let last = after; entries.length < limit; ) {
    let one: E[];
    try {
      one = await readPage(last, 1);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "undecryptable") throw error;
      return { entries, broken: (error as Error).message };
    }
    if (one.length === 0) break;
    entries.push(one[0]);
    last = one[0].seq;
  }
  return { entries };
}

/**
 * Walks a conversation's whole chain from seq 1 and reports the first broken entry; with
 * `checkpoints` (heads pinned by signed checkpoints) it also catches a chain recomputed after an edit.
 */
export async function verifyConversation(
  store: Store,
  conversation: string,
  auditKey: Uint8Array,
  options: VerifyConversationOptions = {},
): Promise<ChainVerification> {
  return walkChain(
    new ChainVerifier(conversation, auditKey, options),
    (after, limit) => store.readEntries(conversation, after, limit),
    async () => (await store.loadDocument(conversation)).headSeq,
    options.pageSize,
  );
}
