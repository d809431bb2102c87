// One conversation, live: its messages and composer, the shared notes, who is here, the save
// state (saved, saving, offline with what is not saved yet), participants and invitations,
// closing and reopening, and the history (timeline of changes, the conversation as it was).

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  appendMessage,
  appendRetraction,
  type ConversationHandle,
  type ConversationStatusInfo,
  messagesOf,
  notesOf,
  type ReadMessage,
  readMessages,
} from "../index.ts";
import { api } from "./api.ts";
import { HistoryPanel } from "./history-panel.tsx";
import { bindTextarea } from "./notes-binding.ts";
import type { Session } from "./session.ts";
import { ErrorText, Field, formatTime, useLoad } from "./ui.tsx";

/** The conversation as GET /v1/conversations/:id describes it. */
export interface ConversationInfo {
  id: string;
  orgId: string;
  title: string;
  externalRef: string | null;
  status: "open" | "closed";
  createdAt: number;
  role: string | null;
  participants: { orgId: string; orgName: string; role: string }[];
  people: { userId: string; email: string; role: string }[];
}

/** A display name per author, from /v1/conversations/:id/authors. */
export type AuthorNames = Map<string, { name: string; orgName: string }>;

interface Invitation {
  id: string;
  email: string;
  role: string;
  expiresAt: number;
  revokedAt: number | null;
  userId: string | null;
}

interface PresenceState {
  name?: string;
  org?: string;
}

/** The words of the save state; contains "Saved" exactly when everything is durable. */
export function saveStateText(status: ConversationStatusInfo): string {
  const n = status.unsavedChanges;
  const unsaved = `${n} unsaved change${n === 1 ? "" : "s"}`;
  switch (status.state) {
    case "synced":
      return n === 0 ? "Saved" : `Saving… ${unsaved}`;
    case "connecting":
      return n === 0 ? "Connecting…" : `Connecting… ${unsaved}`;
    case "offline":
      return `Offline: ${n === 0 ? "no unsaved changes" : unsaved}, reconnecting…`;
    case "error":
      return `Not connected: ${status.error?.message ?? "error"}${n > 0 ? ` (${unsaved})` : ""}`;
    default:
      return "Closed";
  }
}

function useConversation(session: Session, id: string): ConversationHandle | null {
  const [handle, setHandle] = useState<ConversationHandle | null>(null);
  useEffect(() => {
    const opened = session.client.open(id);
    opened.awareness.setLocalState({ name: session.user.name, org: session.organisation.name });
    setHandle(opened);
    return () => {
      opened.close();
      setHandle(null);
    };
  }, [session, id]);
  return handle;
}

function useMessages(handle: ConversationHandle | null): ShownMessage[] {
  const [messages, setMessages] = useState<ShownMessage[]>([]);
  useEffect(() => {
    if (!handle) return;
    const list = messagesOf(handle.doc);
    const update = () => setMessages(readMessages(handle.doc));
    update();
    list.observe(update);
    return () => list.unobserve(update);
  }, [handle]);
  return messages;
}

function useStatus(handle: ConversationHandle | null): ConversationStatusInfo | null {
  const [status, setStatus] = useState<ConversationStatusInfo | null>(null);
  useEffect(() => {
    if (!handle) return;
    setStatus(handle.status);
    return handle.on("status", setStatus);
  }, [handle]);
  return status;
}

function usePresence(handle: ConversationHandle | null): { id: number; state: PresenceState }[] {
  const [present, setPresent] = useState<{ id: number; state: PresenceState }[]>([]);
  useEffect(() => {
    if (!handle) return;
    const update = () =>
      setPresent(
        [...handle.awareness.getStates().entries()]
          .filter(([, state]) => state && typeof (state as PresenceState).name === "string")
          .map(([clientId, state]) => ({ id: clientId, state: state as PresenceState })),
      );
    update();
    handle.awareness.on("change", update);
    return () => handle.awareness.off("change", update);
  }, [handle]);
  return present;
}

/** A message as the list shows it: marked when its author took it back (a retraction entry). */
export type ShownMessage = ReadMessage;

/** The messages, each with its author, organisation and time; retracted ones shown as such. `onRetract` offers taking back one's own. */
export function MessageList(props: { messages: ShownMessage[]; authors: AuthorNames; ownUser?: string; onRetract?: (m: ShownMessage) => void }) {
  const { messages, authors, ownUser, onRetract } = props;
  const end = useRef<HTMLLIElement>(null);
  useEffect(() => end.current?.scrollIntoView?.({ block: "end" }), [messages.length]);
  if (messages.length === 0) return <p class="empty">No messages yet.</p>;
  return (
    // Explicit role: some browsers drop list semantics from lists styled without bullets.
    // biome-ignore lint/a11y/noRedundantRoles: see above
    <ol class="messages" role="list" aria-label="Thread">
      {messages.map((m, i) => {
        const author = authors.get(m.authorUser);
        return (
          <li key={m.id} ref={i === messages.length - 1 ? end : undefined} class={m.retracted ? "retracted" : undefined}>
            <div class="meta">
              <strong>{author?.name ?? "Someone"}</strong> <span class="org">{author?.orgName ?? m.authorOrg}</span>{" "}
              <time dateTime={new Date(m.createdAt).toISOString()}>{formatTime(m.createdAt)}</time>
            </div>
            {m.retracted ? (
              <p class="text">Retracted by its author on {formatTime(m.retracted.createdAt)} (history and the audit trail keep the original).</p>
            ) : (
              <p class="text">{m.text}</p>
            )}
            {onRetract && !m.retracted && m.authorUser === ownUser && (
              <button type="button" class="small secondary" aria-label={`Retract “${m.text.slice(0, 40)}”`} onClick={() => onRetract(m)}>
                Retract
              </button>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function Composer({ disabled, onSend }: { disabled: boolean; onSend: (text: string) => void }) {
  const [text, setText] = useState("");
  const send = (event: Event) => {
    event.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return;
    onSend(trimmed);
    setText("");
  };
  return (
    <form class="composer" onSubmit={send}>
      <label for="composer">Message</label>
      <textarea
        id="composer"
        rows={2}
        value={text}
        disabled={disabled}
        onInput={(event) => setText((event.currentTarget as HTMLTextAreaElement).value)}
        onKeyDown={(event) => {
          // Enter sends, Shift+Enter starts a new line (as in most chat apps).
          if (event.key === "Enter" && !event.shiftKey) send(event);
        }}
      />
      <button type="submit" disabled={disabled || text.trim() === ""}>
        Send
      </button>
    </form>
  );
}

function Notes({ handle, readOnly }: { handle: ConversationHandle; readOnly: boolean }) {
  const area = useRef<HTMLTextAreaElement>(null);
  const origin = useMemo(() => ({ binding: "notes" }), []);
  useEffect(() => {
    if (!area.current) return;
    return bindTextarea(notesOf(handle.doc), area.current, origin);
  }, [handle, origin]);
  return (
    <div class="notes">
      <label for="notes">Notes</label>
      <textarea id="notes" ref={area} rows={8} readOnly={readOnly} aria-describedby="notes-hint" />
      <p id="notes-hint" class="hint">
        Shared with everyone in the conversation, edited live.
      </p>
    </div>
  );
}

function Participants({ info, isOwner, onChanged }: { info: ConversationInfo; isOwner: boolean; onChanged: () => void }) {
  const invitations = useLoad(
    () => (isOwner ? api<{ items: Invitation[] }>("GET", `/v1/conversations/${encodeURIComponent(info.id)}/invitations`) : Promise.resolve({ items: [] })),
    [info.id, isOwner],
  );
  const [email, setEmail] = useState("");
  const [orgId, setOrgId] = useState("");
  const [error, setError] = useState<unknown>(null);
  const changeOrganisation = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  };
  const addOrganisation = (event: Event) => {
    event.preventDefault();
    void changeOrganisation(async () => {
      await api("POST", `/v1/conversations/${encodeURIComponent(info.id)}/participants`, { organisation: orgId.trim() });
      setOrgId("");
    });
  };
  const invite = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      await api("POST", `/v1/conversations/${encodeURIComponent(info.id)}/invitations`, { email: email.trim() });
      setEmail("");
      invitations.reload();
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  };
  const revoke = async (invitation: Invitation) => {
    setError(null);
    try {
      await api("DELETE", `/v1/invitations/${encodeURIComponent(invitation.id)}`);
      invitations.reload();
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <section class="panel" aria-label="Participants">
      <h2>Participants</h2>
      <ul class="plain">
        {info.participants.map((p) => (
          <li key={p.orgId}>
            {p.orgName} <span class="hint">({p.role})</span>{" "}
            {isOwner && (
              <button
                type="button"
                class="small secondary"
                aria-label={`Remove ${p.orgName} from the conversation`}
                onClick={() => void changeOrganisation(() => api("DELETE", `/v1/conversations/${encodeURIComponent(info.id)}/participants/${encodeURIComponent(p.orgId)}`))}
              >
                Remove
              </button>
            )}
          </li>
        ))}
        {info.people.map((p) => (
          <li key={p.userId}>
            {p.email} <span class="hint">(invited, {p.role})</span>
          </li>
        ))}
      </ul>
      {isOwner && (
        <>
          <h3>Invitations</h3>
          <ErrorText error={invitations.error} />
          <ul class="plain">
            {invitations.data?.items.map((invitation) => {
              const state = invitation.revokedAt ? "revoked" : invitation.userId ? "accepted" : invitation.expiresAt < Date.now() ? "expired" : "pending";
              return (
                <li key={invitation.id}>
                  {invitation.email} <span class="hint">({state})</span>{" "}
                  {!invitation.revokedAt && (
                    <button type="button" class="small secondary" aria-label={`Revoke invitation for ${invitation.email}`} onClick={() => revoke(invitation)}>
                      Revoke
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
          <form onSubmit={invite} class="inline">
            <Field label="Invite by email" type="email" value={email} onInput={setEmail} required />
            <button type="submit">Invite</button>
          </form>
          <form onSubmit={addOrganisation} class="inline">
            <Field label="Add an organisation by its id" value={orgId} onInput={setOrgId} placeholder="org_…" required />
            <button type="submit">Add organisation</button>
          </form>
          <p class="hint">Its people then take part as participants; its id is on its Settings page.</p>
          <ErrorText error={error} />
        </>
      )}
    </section>
  );
}

/** The conversation view. */
export function ConversationView({ session, id }: { session: Session; id: string }) {
  const info = useLoad(() => api<ConversationInfo>("GET", `/v1/conversations/${encodeURIComponent(id)}`), [id]);
  const handle = useConversation(session, id);
  const messages = useMessages(handle);
  const status = useStatus(handle);
  const present = usePresence(handle);
  const [tab, setTab] = useState<"notes" | "people" | "history">("notes");
  const [error, setError] = useState<unknown>(null);

  // Author names: fetched again whenever a message arrives from someone not known yet.
  const [authors, setAuthors] = useState<AuthorNames>(new Map());
  const unknownAuthor = messages.some((m) => !authors.has(m.authorUser));
  useEffect(() => {
    if (!unknownAuthor) return;
    let live = true;
    api<{ items: { user: string; name: string; orgName: string }[] }>("GET", `/v1/conversations/${encodeURIComponent(id)}/authors`).then(
      (answer) => {
        if (!live) return;
        const names: AuthorNames = new Map([[session.user.id, { name: session.user.name, orgName: session.organisation.name }]]);
        for (const a of answer.items) names.set(a.user, { name: a.name, orgName: a.orgName });
        setAuthors(names);
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [id, unknownAuthor, session]);
  const shownAuthors = useMemo(() => {
    const names = new Map(authors);
    if (!names.has(session.user.id)) names.set(session.user.id, { name: session.user.name, orgName: session.organisation.name });
    return names;
  }, [authors, session]);

  if (info.error) {
    return (
      <main>
        <ErrorText error={info.error} />
        <a href="#/">Back to the conversations</a>
      </main>
    );
  }
  const conversation = info.data;
  const closed = conversation?.status === "closed";
  const isOwner = conversation?.orgId === session.organisation.id;
  const readOnly = closed || status?.role === "observer";

  const send = (text: string) => {
    if (!handle) return;
    appendMessage(handle.doc, {
      id: crypto.randomUUID(),
      authorUser: session.user.id,
      authorOrg: session.organisation.id,
      text,
      createdAt: Date.now(),
    });
  };
  // Taking a message back appends a retraction naming it; the message itself stays in history.
  const retract = (message: ShownMessage) => {
    if (!handle || message.authorUser !== session.user.id) return;
    appendRetraction(handle.doc, {
      id: crypto.randomUUID(),
      authorUser: session.user.id,
      authorOrg: session.organisation.id,
      retracts: message.id,
      createdAt: Date.now(),
    });
  };
  const setOpen = async (open: boolean) => {
    setError(null);
    try {
      await api("POST", `/v1/conversations/${encodeURIComponent(id)}/${open ? "reopen" : "close"}`);
      info.reload();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <main class="conversation">
      <header class="conversation-header">
        <div>
          <h1>{conversation?.title ?? "…"}</h1>
          <p class="hint">
            {conversation?.externalRef && <span class="ref">{conversation.externalRef}</span>}{" "}
            {conversation && <span class={`badge ${conversation.status}`}>{conversation.status}</span>}
          </p>
        </div>
        <div class="header-side">
          <p role="status" class={`save-state ${status?.state ?? "connecting"}`} aria-live="polite">
            {status ? saveStateText(status) : "Connecting…"}
          </p>
          {isOwner && conversation && (
            <button type="button" class="secondary" onClick={() => setOpen(closed)}>
              {closed ? "Reopen the conversation" : "Close the conversation"}
            </button>
          )}
        </div>
      </header>
      <ErrorText error={error} />
      <section class="presence" aria-label="Here now">
        <h2 class="presence-label">Here now</h2>
        <ul class="plain inline-list">
          {present.map((p) => (
            <li key={p.id} class="person">
              <span class="dot" aria-hidden="true" />
              {p.state.name}
              {p.state.org ? ` (${p.state.org})` : ""}
              {handle && p.id === handle.awareness.clientID ? " (you)" : ""}
            </li>
          ))}
        </ul>
      </section>
      <div class="conversation-body">
        <section class="thread">
          <MessageList messages={messages} authors={shownAuthors} ownUser={session.user.id} onRetract={readOnly ? undefined : retract} />
          {closed && <p class="hint">This conversation is closed: it is read-only until it is reopened.</p>}
          <Composer disabled={!handle || readOnly} onSend={send} />
        </section>
        <aside class="side">
          <div class="tabs" role="tablist" aria-label="Details">
            {(["notes", "people", "history"] as const).map((name) => (
              <button key={name} type="button" role="tab" aria-selected={tab === name} class={tab === name ? "tab active" : "tab"} onClick={() => setTab(name)}>
                {name === "notes" ? "Notes" : name === "people" ? "Participants" : "History"}
              </button>
            ))}
          </div>
          {tab === "notes" && handle && <Notes handle={handle} readOnly={readOnly} />}
          {tab === "people" && conversation && <Participants info={conversation} isOwner={isOwner} onChanged={info.reload} />}
          {tab === "history" && <HistoryPanel session={session} conversationId={id} authors={shownAuthors} />}
        </aside>
      </div>
    </main>
  );
}
