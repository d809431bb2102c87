// The conversation's history: the timeline of its changes (who, when), and the conversation as
// it was at a chosen change — its messages and notes, read-only, next to the live view.

import { useState } from "preact/hooks";
import type { ChangePoint, ConversationAtPoint } from "../index.ts";
import type { AuthorNames } from "./conversation-view.tsx";
import { MessageList } from "./conversation-view.tsx";
import type { Session } from "./session.ts";
import { ErrorText, formatTime, useLoad } from "./ui.tsx";

const PAGE = 200;

/** The timeline and the view at a change. */
export function HistoryPanel({ session, conversationId, authors }: { session: Session; conversationId: string; authors: AuthorNames }) {
  const [round, setRound] = useState(0);
  const timeline = useLoad(async () => {
    const points: ChangePoint[] = [];
    let after = 0;
    for (let page = 0; page < 50; page++) {
      const answer = await session.client.changes(conversationId, { after, limit: PAGE });
      points.push(...answer.items);
      if (!answer.hasMore) break;
      after = answer.nextCursor;
    }
    return points.reverse();
  }, [conversationId, round]);
  const [selected, setSelected] = useState<ConversationAtPoint | null>(null);
  const [error, setError] = useState<unknown>(null);
  const view = async (seq: number) => {
    setError(null);
    try {
      setSelected(await session.client.history(conversationId, { seq }));
    } catch (failure) {
      setError(failure);
    }
  };

  if (selected) {
    return (
      <section class="panel history-view" aria-label={`The conversation at change ${selected.seq}`}>
        <h2>
          As it was at change {selected.seq}
          {selected.at !== null && <span class="hint"> ({formatTime(selected.at)})</span>}
        </h2>
        <p class="hint">
          {selected.headSeq - selected.seq} later change{selected.headSeq - selected.seq === 1 ? "" : "s"}; read-only.
        </p>
        <button type="button" class="secondary" onClick={() => setSelected(null)}>
          Back to the timeline
        </button>
        <h3>Messages then</h3>
        <MessageList messages={selected.items} authors={authors} />
        <h3>Notes then</h3>
        <pre class="notes-then">{selected.notes || "(empty)"}</pre>
      </section>
    );
  }
  return (
    <section class="panel" aria-label="History">
      <div class="toolbar">
        <h2>History</h2>
        <button type="button" class="small secondary" onClick={() => setRound((n) => n + 1)}>
          Refresh
        </button>
      </div>
      <ErrorText error={timeline.error ?? error} />
      {timeline.data?.length === 0 && <p>No changes yet.</p>}
      <ol class="timeline" aria-label="Changes">
        {timeline.data?.map((point) => (
          <li key={point.seq}>
            <span class="seq">#{point.seq}</span> {authors.get(point.actor.user)?.name ?? point.actor.user}{" "}
            <span class="hint">{formatTime(point.at)}</span>
            {point.restore && <span class="badge">restore</span>}{" "}
            <button type="button" class="small" aria-label={`View at change ${point.seq}`} onClick={() => view(point.seq)}>
              View
            </button>
          </li>
        ))}
      </ol>
    </section>
  );
}
