// Settings: the person's own two-factor (enrolment shows the otpauth URI as a QR code, then the
// recovery codes once) and security keys (security-keys-panel.tsx), and for owners and admins the organisation: members and roles, the
// two-factor requirement, API keys and webhook secrets (shown once), webhook deliveries and dead
// letters with replay, and the organisation's audit trail with its verification result.

import QRCode from "qrcode";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.ts";
import { RecoveryCodes } from "./recovery-codes.tsx";
import { SecurityKeysPanel } from "./security-keys-panel.tsx";
import { reloadSession, type Session } from "./session.ts";
import { ErrorText, Field, formatTime, Panel, useLoad } from "./ui.tsx";

function TwoFactor({ session, onSession }: { session: Session; onSession: (s: Session) => void }) {
  const [enrolment, setEnrolment] = useState<{ secret: string; uri: string } | null>(null);
  const [qr, setQr] = useState("");
  const [code, setCode] = useState("");
  const [recoveryCodes, setRecoveryCodes] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!enrolment) return;
    QRCode.toString(enrolment.uri, { type: "svg", margin: 1, errorCorrectionLevel: "M" }).then(
      (svg) => setQr(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`),
      setError,
    );
  }, [enrolment]);
  const run = (action: () => Promise<void>) => async (event?: Event) => {
    event?.preventDefault();
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    }
  };
  const start = run(async () => setEnrolment(await api("POST", "/v1/auth/2fa/enrol")));
  const confirm = run(async () => {
    const answer = await api<{ recoveryCodes: string[] }>("POST", "/v1/auth/2fa/verify", { code: code.trim() });
    setRecoveryCodes(answer.recoveryCodes);
    setEnrolment(null);
    setCode("");
    onSession(await reloadSession(session));
  });
  const disable = run(async () => {
    const trimmed = code.trim();
    await api("POST", "/v1/auth/2fa/disable", /^\d{6}$/.test(trimmed) ? { totp: trimmed } : { recoveryCode: trimmed });
    setCode("");
    setRecoveryCodes(null);
    onSession(await reloadSession(session));
  });
  return (
    <Panel title="Two-factor authentication">
      {recoveryCodes && (
        <RecoveryCodes
          codes={recoveryCodes}
          lead={
            <>
              <strong>Two-factor is on.</strong> Keep these recovery codes somewhere safe: each works once, if you lose your authenticator. They are shown only now.
            </>
          }
        />
      )}
      {!session.user.twoFactor && !enrolment && (
        <>
          <p>Two-factor is off. With it on, signing in also needs a code from an authenticator app.</p>
          <button type="button" onClick={() => start()}>
            Turn on two-factor
          </button>
        </>
      )}
      {enrolment && (
        <form onSubmit={confirm}>
          <p>Scan this code with your authenticator app, or type the secret, then enter the 6-digit code it shows.</p>
          {qr && <img class="qr" src={qr} width={200} height={200} alt={`QR code for your authenticator app: ${enrolment.uri}`} />}
          <p>
            Secret: <code>{enrolment.secret}</code>
          </p>
          <Field label="Code" value={code} onInput={setCode} inputMode="numeric" autocomplete="one-time-code" required />
          <button type="submit">Confirm</button>
        </form>
      )}
      {session.user.twoFactor && !enrolment && (
        <form onSubmit={disable}>
          <p>Two-factor is on.</p>
          <Field label="Code or recovery code" value={code} onInput={setCode} autocomplete="one-time-code" required />
          <button type="submit" class="secondary">
            Turn off two-factor
          </button>
        </form>
      )}
      <ErrorText error={error} />
    </Panel>
  );
}

interface Organisation {
  id: string;
  name: string;
  require2fa: boolean;
  requireSecurityKey: boolean;
}

interface MemberInvitation {
  id: string;
  email: string;
  role: string;
  expiresAt: number;
}

function RoleSelect(props: { id: string; label: string; value: string; isOwner: boolean; onChange: (role: string) => void }) {
  return (
    <select id={props.id} aria-label={props.label} value={props.value} onChange={(event) => props.onChange((event.currentTarget as HTMLSelectElement).value)}>
      <option value="member">member</option>
      <option value="admin">admin</option>
      {(props.isOwner || props.value === "owner") && <option value="owner">owner</option>}
    </select>
  );
}

function Members({ org, isOwner }: { org: string; isOwner: boolean }) {
  const members = useLoad(() => api<{ items: { userId: string; email: string; name: string; role: string }[] }>("GET", `/v1/organisations/${org}/members`), [org]);
  const pending = useLoad(() => api<{ items: MemberInvitation[] }>("GET", `/v1/organisations/${org}/member-invitations`), [org]);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("member");
  const [message, setMessage] = useState("");
  const [error, setError] = useState<unknown>(null);
  const act = async (action: () => Promise<unknown>, done?: string) => {
    setError(null);
    setMessage("");
    try {
      await action();
      if (done) setMessage(done);
      members.reload();
      pending.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const invite = (event: Event) => {
    event.preventDefault();
    const address = email.trim();
    void act(async () => {
      await api("POST", `/v1/organisations/${org}/members`, { email: address, role });
      setEmail("");
    }, `Invited ${address}: they join when they accept, signed in.`);
  };
  return (
    <Panel title="Members" headingLevel={3}>
      <ErrorText error={members.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {members.data?.items.map((m) => (
            <tr key={m.userId}>
              <td>{m.name}</td>
              <td>{m.email}</td>
              <td>
                <RoleSelect
                  id={`role-${m.userId}`}
                  label={`Role of ${m.email}`}
                  value={m.role}
                  isOwner={isOwner}
                  onChange={(next) => void act(() => api("PATCH", `/v1/organisations/${org}/members/${encodeURIComponent(m.userId)}`, { role: next }))}
                />
              </td>
              <td>
                <button
                  type="button"
                  class="small secondary"
                  aria-label={`Remove ${m.email}`}
                  onClick={() => void act(() => api("DELETE", `/v1/organisations/${org}/members/${encodeURIComponent(m.userId)}`))}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(pending.data?.items.length ?? 0) > 0 && (
        <>
          <h4>Invited, not yet accepted</h4>
          <ul class="plain">
            {pending.data?.items.map((i) => (
              <li key={i.id}>
                {i.email} <span class="hint">({i.role}, until {formatTime(i.expiresAt)})</span>{" "}
                <button
                  type="button"
                  class="small secondary"
                  aria-label={`Revoke membership invitation for ${i.email}`}
                  onClick={() => void act(() => api("DELETE", `/v1/organisations/${org}/member-invitations/${encodeURIComponent(i.id)}`))}
                >
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
      <form class="inline" onSubmit={invite}>
        <Field label="Member's email" type="email" value={email} onInput={setEmail} required />
        <div class="field">
          <label for="member-role">Role</label>
          <RoleSelect id="member-role" label="Role" value={role} isOwner={isOwner} onChange={setRole} />
        </div>
        <button type="submit">Invite member</button>
      </form>
      <p class="hint">They get an e-mail and join when they accept, signed in to their own account.</p>
      {message && <p role="status">{message}</p>}
      <ErrorText error={error} />
    </Panel>
  );
}

/** Invitations to join an organisation, addressed to the signed-in person. */
function MyInvitations() {
  const mine = useLoad(() => api<{ items: { id: string; organisation: { id: string; name: string }; role: string }[] }>("GET", "/v1/me/member-invitations"), []);
  const [message, setMessage] = useState("");
  const [error, setError] = useState<unknown>(null);
  const answer = async (id: string, verb: "accept" | "decline", name: string) => {
    setError(null);
    try {
      await api("POST", `/v1/me/member-invitations/${encodeURIComponent(id)}/${verb}`, {});
      setMessage(verb === "accept" ? `You are now a member of ${name}: sign in again to act for it.` : `Declined the invitation from ${name}.`);
      mine.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  if (!mine.data?.items.length && !message && !error) return null;
  return (
    <Panel title="Invitations to join an organisation">
      <ul class="plain">
        {mine.data?.items.map((i) => (
          <li key={i.id}>
            {i.organisation.name} <span class="hint">(as {i.role})</span>{" "}
            <button type="button" class="small" onClick={() => answer(i.id, "accept", i.organisation.name)}>
              Accept
            </button>{" "}
            <button type="button" class="small secondary" onClick={() => answer(i.id, "decline", i.organisation.name)}>
              Decline
            </button>
          </li>
        ))}
      </ul>
      {message && <p role="status">{message}</p>}
      <ErrorText error={error} />
    </Panel>
  );
}

function ApiKeys({ org }: { org: string }) {
  const keys = useLoad(
    () => api<{ items: { id: string; name: string; scopes: string[]; createdAt: number; lastUsedAt: number | null; revokedAt: number | null }[] }>("GET", `/v1/organisations/${org}/api-keys`),
    [org],
  );
  const [name, setName] = useState("");
  const [write, setWrite] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const answer = await api<{ key: string }>("POST", `/v1/organisations/${org}/api-keys`, {
        name: name.trim(),
        scopes: write ? ["conversations:read", "conversations:write"] : ["conversations:read"],
      });
      setCreated(answer.key);
      setName("");
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const revoke = async (id: string) => {
    try {
      await api("DELETE", `/v1/organisations/${org}/api-keys/${encodeURIComponent(id)}`);
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <Panel title="API keys" headingLevel={3}>
      {created && (
        <section class="once" aria-label="New API key">
          <p>Copy the key now: it is shown only once.</p>
          <code class="secret">{created}</code>
        </section>
      )}
      <ul class="plain">
        {keys.data?.items.map((k) => (
          <li key={k.id}>
            {k.name} <span class="hint">({k.scopes.join(", ")}; {k.revokedAt ? "revoked" : k.lastUsedAt ? `last used ${formatTime(k.lastUsedAt)}` : "never used"})</span>{" "}
            {!k.revokedAt && (
              <button type="button" class="small secondary" aria-label={`Revoke API key ${k.name}`} onClick={() => revoke(k.id)}>
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      <form class="inline" onSubmit={create}>
        <Field label="Key name" value={name} onInput={setName} required />
        <label class="check">
          <input type="checkbox" checked={write} onChange={(event) => setWrite((event.currentTarget as HTMLInputElement).checked)} /> May write
        </label>
        <button type="submit">Create API key</button>
      </form>
      <ErrorText error={error ?? keys.error} />
    </Panel>
  );
}

interface Endpoint {
  id: string;
  url: string;
  enabled: boolean;
  events: string[];
  consecutiveFailures?: number;
  lastError?: string | null;
}

function WebhookDetails({ org, endpoint }: { org: string; endpoint: Endpoint }) {
  const base = `/v1/organisations/${org}/webhooks/${encodeURIComponent(endpoint.id)}`;
  const attempts = useLoad(
    () => api<{ items: { at: number; eventId: string; attempt: number; ok: boolean; status: number | null; error: string | null; durationMs: number }[] }>("GET", `${base}/attempts?limit=20`),
    [base],
  );
  const dead = useLoad(
    () => api<{ items: { id: string; eventType: string; parkedAt: number; attempts: number; lastError: string | null; replayRequestedAt: number | null }[] }>("GET", `${base}/dead-letters`),
    [base],
  );
  const [message, setMessage] = useState("");
  const [error, setError] = useState<unknown>(null);
  const replay = async () => {
    setError(null);
    try {
      const answer = await api<{ queued: number }>("POST", `${base}/dead-letters/replay`, {});
      setMessage(`${answer.queued} event(s) queued for delivery.`);
      dead.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <div class="webhook-details">
      <h4>Recent deliveries</h4>
      {attempts.data?.items.length === 0 && <p class="hint">None yet.</p>}
      <ul class="plain">
        {attempts.data?.items.map((a) => (
          <li key={`${a.eventId}-${a.attempt}-${a.at}`}>
            {formatTime(a.at)} <span class={a.ok ? "ok" : "error"}>{a.ok ? "delivered" : "failed"}</span> ({a.status ?? "no answer"}, {a.durationMs} ms
            {a.error ? `, ${a.error}` : ""}){a.attempt > 1 ? ` — try ${a.attempt}` : ""}
          </li>
        ))}
      </ul>
      <h4>Dead letters</h4>
      {dead.data?.items.length === 0 && <p class="hint">None.</p>}
      <ul class="plain">
        {dead.data?.items.map((d) => (
          <li key={d.id}>
            {d.eventType}, parked {formatTime(d.parkedAt)} after {d.attempts} tries{d.lastError ? ` (${d.lastError})` : ""}
            {d.replayRequestedAt ? " — replay queued" : ""}
          </li>
        ))}
      </ul>
      {(dead.data?.items.length ?? 0) > 0 && (
        <button type="button" onClick={replay}>
          Replay dead letters
        </button>
      )}
      {message && <p role="status">{message}</p>}
      <ErrorText error={error ?? attempts.error ?? dead.error} />
    </div>
  );
}

function Webhooks({ org }: { org: string }) {
  const hooks = useLoad(() => api<{ items: Endpoint[] }>("GET", `/v1/organisations/${org}/webhooks`), [org]);
  const [url, setUrl] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const answer = await api<{ secret: string }>("POST", `/v1/organisations/${org}/webhooks`, { url: url.trim() });
      setSecret(answer.secret);
      setUrl("");
      hooks.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <Panel title="Webhooks" headingLevel={3}>
      {secret && (
        <section class="once" aria-label="New webhook secret">
          <p>The signing secret, shown only once:</p>
          <code class="secret">{secret}</code>
        </section>
      )}
      <ul class="plain">
        {hooks.data?.items.map((h) => (
          <li key={h.id}>
            {h.url} <span class="hint">({h.enabled ? "enabled" : "disabled"})</span>{" "}
            <button type="button" class="small secondary" aria-expanded={open === h.id} onClick={() => setOpen(open === h.id ? null : h.id)}>
              Deliveries
            </button>
            {open === h.id && <WebhookDetails org={org} endpoint={h} />}
          </li>
        ))}
      </ul>
      <form class="inline" onSubmit={create}>
        <Field label="Endpoint URL" type="url" value={url} onInput={setUrl} placeholder="https://…" required />
        <button type="submit">Add webhook</button>
      </form>
      <ErrorText error={error ?? hooks.error} />
    </Panel>
  );
}

function AuditTrail({ org }: { org: string }) {
  const verify = useLoad(() => api<{ ok: boolean; entries?: number; checked?: number; firstBroken?: unknown; reason?: string }>("GET", `/v1/organisations/${org}/audit/verify`), [org]);
  const entries = useLoad(() => api<{ items: { seq: number; at: number; action: string; actor: string }[] }>("GET", `/v1/organisations/${org}/audit/entries?limit=1000`), [org]);
  const items = entries.data?.items ?? [];
  return (
    <Panel title="Audit trail" headingLevel={3}>
      <button
        type="button"
        class="small secondary"
        onClick={() => {
          verify.reload();
          entries.reload();
        }}
      >
        Refresh the audit trail
      </button>
      {verify.data && (
        <p role="status" class={verify.data.ok ? "ok" : "error"}>
          {verify.data.ok ? "The audit chain verifies: no entry was changed, removed or inserted." : `The audit chain does not verify: ${verify.data.reason ?? JSON.stringify(verify.data.firstBroken)}`}
        </p>
      )}
      <ErrorText error={verify.error ?? entries.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">What</th>
            <th scope="col">Who</th>
          </tr>
        </thead>
        <tbody>
          {items
            .slice(-100)
            .reverse()
            .map((e) => (
              <tr key={e.seq}>
                <td>{e.seq}</td>
                <td>{formatTime(e.at)}</td>
                <td>{e.action}</td>
                <td>{e.actor}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </Panel>
  );
}

/** A checkbox for one of the organisation's requirements; disabled until the organisation is loaded. */
function RequirementBox(props: { label: string; checked: boolean | undefined; onChange: (on: boolean) => void }) {
  return (
    <label class="check">
      <input type="checkbox" checked={props.checked ?? false} disabled={props.checked === undefined} onChange={(event) => props.onChange((event.currentTarget as HTMLInputElement).checked)} />{" "}
      {props.label}
    </label>
  );
}

function OrganisationSettings({ session }: { session: Session }) {
  const org = session.organisation.id;
  const details = useLoad(() => api<Organisation>("GET", `/v1/organisations/${org}`), [org]);
  const [error, setError] = useState<unknown>(null);
  // The box shows the choice at once; it goes back if the server refuses it.
  const [chosen, setChosen] = useState<Partial<Pick<Organisation, "require2fa" | "requireSecurityKey">>>({});
  const setRequire = async (change: Partial<Pick<Organisation, "require2fa" | "requireSecurityKey">>) => {
    setError(null);
    setChosen({ ...chosen, ...change });
    try {
      await api("PATCH", `/v1/organisations/${org}`, change);
      details.reload();
    } catch (failure) {
      setChosen({});
      setError(failure);
    }
  };
  return (
    <Panel title={`Organisation: ${session.organisation.name}`}>
      <RequirementBox label="Require two-factor of every member" checked={chosen.require2fa ?? details.data?.require2fa} onChange={(on) => setRequire({ require2fa: on })} />
      <RequirementBox
        label="Require a security key of every member"
        checked={chosen.requireSecurityKey ?? details.data?.requireSecurityKey}
        onChange={(on) => setRequire({ requireSecurityKey: on })}
      />
      <ErrorText error={error ?? details.error} />
      <Members org={org} isOwner={session.organisation.role === "owner"} />
      <ApiKeys org={org} />
      <Webhooks org={org} />
      <AuditTrail org={org} />
    </Panel>
  );
}

/** The settings page. */
export function SettingsView({ session, onSession }: { session: Session; onSession: (s: Session) => void }) {
  const admin = session.organisation.role === "owner" || session.organisation.role === "admin";
  return (
    <main class="narrow settings">
      <h1>Settings</h1>
      <p>
        Signed in as {session.user.name} ({session.user.email}), {session.organisation.role} of {session.organisation.name} (organisation id{" "}
        <code>{session.organisation.id}</code>: give it to a partner who wants to add you to a conversation).
      </p>
      <TwoFactor session={session} onSession={onSession} />
      <SecurityKeysPanel email={session.user.email} />
      <MyInvitations />
      {admin && <OrganisationSettings session={session} />}
    </main>
  );
}
