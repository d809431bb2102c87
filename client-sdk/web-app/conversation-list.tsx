// The conversations a person may see (newest first), searchable by external reference, and the
// form that starts a new one with a title, an external reference and people invited by email.

import { useState } from "preact/hooks";
import { api } from "./api.ts";
import { ErrorText, Field, formatTime, navigate, useLoad } from "./ui.tsx";

/** A conversation as the list shows it. */
interface ConversationSummary {
  id: string;
  orgId: string;
  orgName: string;
  title: string;
  externalRef: string | null;
  status: "open" | "closed";
  createdAt: number;
  lastActivityAt: number;
  participants: { orgId: string; orgName: string; role: string }[];
}

/** The list with its search box. */
export function ConversationList() {
  const [search, setSearch] = useState("");
  const [applied, setApplied] = useState("");
  const list = useLoad(
    () => api<{ items: ConversationSummary[] }>("GET", `/v1/conversations?limit=100${applied ? `&externalRef=${encodeURIComponent(applied)}` : ""}`),
    [applied],
  );
  return (
    <main>
      <div class="toolbar">
        <h1>Conversations</h1>
        <button type="button" onClick={() => navigate("/conversations/new")}>
          New conversation
        </button>
      </div>
      <form
        class="search"
        aria-label="Search conversations"
        onSubmit={(event) => {
          event.preventDefault();
          setApplied(search.trim());
        }}
      >
        <Field label="Search by external reference" value={search} onInput={setSearch} placeholder="e.g. TICKET-42" />
        <button type="submit">Search</button>
        {applied && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setSearch("");
              setApplied("");
            }}
          >
            Show all
          </button>
        )}
      </form>
      <ErrorText error={list.error} />
      {list.data && list.data.items.length === 0 && <p>{applied ? `No conversation has the reference “${applied}”.` : "No conversations yet."}</p>}
      {list.data && list.data.items.length > 0 && (
        <table class="conversations">
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">External reference</th>
              <th scope="col">Organisations</th>
              <th scope="col">Last activity</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((c) => (
              <tr key={c.id}>
                <td>
                  <a href={`#/conversations/${encodeURIComponent(c.id)}`}>{c.title}</a>
                </td>
                <td>{c.externalRef ?? "—"}</td>
                <td>{[c.orgName, ...c.participants.map((p) => p.orgName)].join(", ")}</td>
                <td>{formatTime(c.lastActivityAt)}</td>
                <td>
                  <span class={`badge ${c.status}`}>{c.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}

/** The "New conversation" form. */
export function NewConversation() {
  const [title, setTitle] = useState("");
  const [externalRef, setExternalRef] = useState("");
  const [invite, setInvite] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const emails = invite
        .split(/[\s,;]+/)
        .map((e) => e.trim())
        .filter(Boolean);
      const created = await api<{ id: string }>("POST", "/v1/conversations", {
        title,
        externalRef: externalRef.trim() || undefined,
        invitations: emails.map((email) => ({ email })),
      });
      navigate(`/conversations/${encodeURIComponent(created.id)}`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="narrow">
      <h1>New conversation</h1>
      <form onSubmit={submit}>
        <Field label="Title" value={title} onInput={setTitle} required />
        <Field label="External reference" value={externalRef} onInput={setExternalRef} placeholder="your ticket number" />
        <Field label="Invite by email" value={invite} onInput={setInvite} placeholder="sam@supplier.example, …" />
        <p class="hint">Each address gets a link valid 14 days. Separate several with commas.</p>
        <ErrorText error={error} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            Create
          </button>
          <a href="#/" class="secondary-link">
            Cancel
          </a>
        </div>
      </form>
    </main>
  );
}
