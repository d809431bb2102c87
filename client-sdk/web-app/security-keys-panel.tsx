// The settings panel for the person's own security keys and passkeys: the list with when each
// was added and last used, "Rename" and "Remove", and adding a new one under a name the person chooses.
// The recovery codes a first key comes with are shown here, once, as the two-factor panel shows
// the app's; "New recovery codes" replaces them, proven with a key.

import { useState } from "preact/hooks";
import { RecoveryCodes } from "./recovery-codes.tsx";
import { addSecurityKey, listSecurityKeys, removeSecurityKey, renameSecurityKey, replaceRecoveryCodes, type SecurityKey, securityKeysSupported } from "./security-keys.ts";
import { ErrorText, Field, formatTime, Panel, useLoad } from "./ui.tsx";

/** Security keys: list, add (named), rename, remove; the recovery codes of a first key, and new ones. */
export function SecurityKeysPanel({ email }: { email: string }) {
  const keys = useLoad(listSecurityKeys, []);
  // Codes the server just issued: in memory only, gone when the person leaves the page.
  const [recoveryCodes, setRecoveryCodes] = useState<string[] | null>(null);
  const [name, setName] = useState("");
  // The key being renamed (one at a time) and the name typed for it.
  const [renaming, setRenaming] = useState<SecurityKey | null>(null);
  const [newName, setNewName] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState("");
  const [error, setError] = useState<unknown>(null);
  const act = async (action: () => Promise<string>) => {
    setBusy(true);
    setError(null);
    setMessage("");
    setRecoveryCodes(null);
    try {
      setMessage(await action());
      keys.reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const add = (event: Event) => {
    event.preventDefault();
    const chosen = name.trim();
    void act(async () => {
      const added = await addSecurityKey(chosen);
      setName("");
      if (added.recoveryCodes) setRecoveryCodes(added.recoveryCodes);
      return `Added the security key “${chosen}”: signing in now asks for it after your password.`;
    });
  };
  const startRenaming = (key: SecurityKey) => {
    setRenaming(key);
    setNewName(key.name);
  };
  const rename = (event: Event) => {
    event.preventDefault();
    const key = renaming;
    const chosen = newName.trim();
    if (!key) return;
    void act(async () => {
      await renameSecurityKey(key.id, chosen);
      setRenaming(null);
      return `Renamed the security key “${key.name}” to “${chosen}”.`;
    });
  };
  const remove = (key: SecurityKey) =>
    void act(async () => {
      await removeSecurityKey(key.id);
      return `Removed the security key “${key.name}”.`;
    });
  const renewCodes = () =>
    void act(async () => {
      setRecoveryCodes(await replaceRecoveryCodes(email));
      return "New recovery codes: the old ones no longer work.";
    });
  const items = keys.data ?? [];
  return (
    <Panel title="Security keys">
      <p>A security key or passkey is the strongest second factor: it only answers this site, so a look-alike page cannot use it.</p>
      {recoveryCodes && (
        <RecoveryCodes
          codes={recoveryCodes}
          lead={
            <>
              <strong>Keep these recovery codes somewhere safe:</strong> each works once, to sign in if you lose your security key. They are shown only now.
            </>
          }
        />
      )}
      {keys.data && items.length === 0 && <p class="hint">No security key yet.</p>}
      <ul class="plain">
        {items.map((k) => (
          <li key={k.id}>
            {k.name} <span class="hint">(added {formatTime(k.createdAt)}; {k.lastUsedAt ? `last used ${formatTime(k.lastUsedAt)}` : "never used"})</span>{" "}
            {renaming?.id === k.id ? (
              <form class="inline" onSubmit={rename}>
                <Field label={`New name for ${k.name}`} value={newName} onInput={setNewName} required />
                <button type="submit" class="small" disabled={busy}>
                  Save name
                </button>
                <button type="button" class="small secondary" disabled={busy} onClick={() => setRenaming(null)}>
                  Cancel
                </button>
              </form>
            ) : (
              <button type="button" class="small secondary" disabled={busy} aria-label={`Rename security key ${k.name}`} onClick={() => startRenaming(k)}>
                Rename
              </button>
            )}{" "}
            <button type="button" class="small secondary" disabled={busy} aria-label={`Remove security key ${k.name}`} onClick={() => remove(k)}>
              Remove
            </button>
          </li>
        ))}
      </ul>
      {securityKeysSupported() ? (
        <form class="inline" onSubmit={add}>
          <Field label="Name for the security key" value={name} onInput={setName} placeholder="e.g. YubiKey" required />
          <button type="submit" disabled={busy}>
            Add a security key
          </button>
        </form>
      ) : (
        <p class="hint">This browser cannot use security keys here (it needs WebAuthn on an https address).</p>
      )}
      {items.length > 0 && securityKeysSupported() && (
        <p>
          <button type="button" class="small secondary" disabled={busy} onClick={renewCodes}>
            New recovery codes
          </button>{" "}
          <span class="hint">(your key confirms it; the old codes stop working)</span>
        </p>
      )}
      {message && <p role="status">{message}</p>}
      <ErrorText error={error ?? keys.error} />
    </Panel>
  );
}
