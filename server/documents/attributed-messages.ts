// Messages as the API reports them: each entry's author is the owner of the Yjs client id that
// wrote it (the first writer of that id, from the log), never what the entry's own fields claim.
// Entries written before the rules, whose fields name someone else, are reported under their writer;
// entries a restore re-added keep the authors they name (the restore was checked against the past).

import * as Y from "yjs";
import { applyRetractions, isConversationMessage, isConversationRetraction, messagesOf, type ReadMessage } from "../../protocol/index.ts";
import type { ClientOwner } from "./document-index.ts";

/** Reads a materialised document's messages, retractions applied, attributed to their writers. */
export function attributedMessages(doc: Y.Doc, ownerOf: (client: number) => ClientOwner | undefined): ReadMessage[] {
  const entries: unknown[] = [];
  // Walk the list's items (not toArray()) to know which client id wrote each entry.
  for (let item = messagesOf(doc)._start; item !== null; item = item.right) {
    if (item.deleted || !(item.content instanceof Y.ContentAny)) continue;
    const owner = ownerOf(item.id.client);
    if (!owner) continue; // nobody to attribute it to: not shown
    for (const value of item.content.arr) {
      if (!isConversationMessage(value) && !isConversationRetraction(value)) continue;
      // A restore's entries were checked, when it was written, to be past entries as they were.
      entries.push(owner.restore ? value : { ...value, authorUser: owner.user, authorOrg: owner.org });
    }
  }
  return applyRetractions(entries);
}
