// Asking to sign up (an organisation and its owner: the mailed link creates them) and signing
// in, with the second step for people who turned two-factor on: their security key, a code from
// their authenticator app, or one of their recovery codes; or signing in with a passkey alone.

import { useState } from "preact/hooks";
import { ApiError } from "./api.ts";
import { ErrorCode } from "../index.ts";
import { securityKeyProof, securityKeysSupported } from "./security-keys.ts";
import { requestSignUp, type Session, signIn, signInWithPasskey } from "./session.ts";
import { ErrorText, Field } from "./ui.tsx";

/** The sign-up form; then "check your mail" (the mailed link creates the organisation and signs in). */
export function SignUpView() {
  const [name, setName] = useState("");
  const [organisation, setOrganisation] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [mailedTo, setMailedTo] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await requestSignUp({ name, organisation, email, password });
      setMailedTo(email);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const suggestions = error instanceof ApiError && Array.isArray(error.details.suggestions) ? (error.details.suggestions as string[]) : [];
  if (mailedTo !== null) {
    return (
      <main class="auth">
        <h1>Check your mail</h1>
        <p role="status">
          We sent a link to {mailedTo}. Open it to create {organisation} and sign in; it works once, for 24 hours.
        </p>
        <p class="hint">Nothing arrived? Look in your spam folder, or sign up again in a few minutes.</p>
      </main>
    );
  }
  return (
    <main class="auth">
      <h1>Create your organisation on Parley</h1>
      <form onSubmit={submit}>
        <Field label="Name" value={name} onInput={setName} autocomplete="name" required />
        <Field label="Organisation" value={organisation} onInput={setOrganisation} autocomplete="organization" required />
        <Field label="Email" type="email" value={email} onInput={setEmail} autocomplete="email" required />
        <Field label="Password" type="password" value={password} onInput={setPassword} autocomplete="new-password" required />
        <p class="hint">At least 8 characters; a few unrelated words work well.</p>
        <ErrorText error={error} />
        {suggestions.length > 0 && (
          <ul class="hint">
            {suggestions.map((s) => (
              <li key={s}>{s}</li>
            ))}
          </ul>
        )}
        <button type="submit" disabled={busy}>
          Sign up
        </button>
      </form>
      <p>
        Already have an account? <a href="#/signin">Sign in</a>
      </p>
    </main>
  );
}

/** A second factor as the server's TwoFactorRequired answer names them (`secondFactors`). */
type SecondFactor = "security-key" | "authenticator-app" | "recovery-code";
const SECOND_FACTORS: readonly SecondFactor[] = ["security-key", "authenticator-app", "recovery-code"];

/** The factors the answer names; an answer without the list (an older server) offers all of them. */
function secondFactorsOf(error: ApiError): SecondFactor[] {
  const named = error.details.secondFactors;
  if (!Array.isArray(named)) return [...SECOND_FACTORS];
  return SECOND_FACTORS.filter((factor) => named.includes(factor));
}

/** Which code the second step's field takes, or none shown. */
type CodeKind = "totp" | "recovery" | null;

/** The field the second step opens with: the app's code when the account has the app, else none (the key asks). */
function firstCodeKind(factors: readonly SecondFactor[], keyUsable: boolean): CodeKind {
  if (factors.includes("authenticator-app")) return "totp";
  if (!keyUsable && factors.includes("recovery-code")) return "recovery";
  return null;
}

/**
 * The sign-in form; asks for a second factor when the account has one: its security key, a code
 * from the authenticator app, or a recovery code. The code field shows only when a code can work:
 * an account whose only factor is a key is asked for the key, with "use a recovery code" as a
 * link that reveals the field while it has codes left. A passkey signs in without a password.
 */
export function SignInView({ onSession }: { onSession: (session: Session) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [factors, setFactors] = useState<SecondFactor[] | null>(null);
  const [codeKind, setCodeKind] = useState<CodeKind>(null);
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const needsSecondFactor = factors !== null;
  const keyUsable = (factors ?? []).includes("security-key") && securityKeysSupported();
  const attempt = async (signingIn: () => Promise<Session>) => {
    setBusy(true);
    setError(null);
    try {
      onSession(await signingIn());
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === ErrorCode.TwoFactorRequired) {
        // The password was right: the answer names the factors this account can use.
        const offered = secondFactorsOf(failure);
        setFactors(offered);
        setCodeKind(firstCodeKind(offered, offered.includes("security-key") && securityKeysSupported()));
      } else setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: Event) => {
    event.preventDefault();
    const second = codeKind === "recovery" ? { recoveryCode: code.trim() } : codeKind === "totp" ? { totp: code.trim() } : {};
    void attempt(() => signIn({ email, password, ...second }));
  };
  const withSecurityKey = () => attempt(async () => signIn({ email, password, webauthn: await securityKeyProof(email) }));
  const withPasskey = () => attempt(async () => signInWithPasskey(await securityKeyProof()));
  const offers = (factor: SecondFactor) => (factors ?? []).includes(factor);
  const switchTo = (kind: CodeKind) => {
    setCode("");
    setCodeKind(kind);
  };
  return (
    <main class="auth">
      <h1>Sign in to Parley</h1>
      <form onSubmit={submit}>
        <Field label="Email" type="email" value={email} onInput={setEmail} autocomplete="username" required />
        <Field label="Password" type="password" value={password} onInput={setPassword} autocomplete="current-password" required />
        {keyUsable && (
          <section class="second-factor" aria-label="Security key">
            <p>Your account has a security key: touch or unlock it when your browser asks.</p>
            <button type="button" disabled={busy} onClick={() => void withSecurityKey()}>
              Use your security key
            </button>
            {codeKind === "totp" && <p class="hint">Or enter a code from your authenticator app below.</p>}
          </section>
        )}
        {needsSecondFactor && offers("security-key") && !keyUsable && (
          <p class="hint">Your account has a security key, but this browser cannot use security keys here (it needs WebAuthn on an https address).</p>
        )}
        {codeKind !== null && (
          <Field
            label={codeKind === "recovery" ? "Recovery code" : "Authentication code"}
            value={code}
            onInput={setCode}
            autocomplete="one-time-code"
            inputMode={codeKind === "recovery" ? "text" : "numeric"}
            required
          />
        )}
        {codeKind !== "recovery" && offers("recovery-code") && (
          <button type="button" class="link" onClick={() => switchTo("recovery")}>
            {codeKind === "totp" ? "Use a recovery code instead" : "Use a recovery code"}
          </button>
        )}
        {codeKind === "recovery" && offers("authenticator-app") && (
          <button type="button" class="link" onClick={() => switchTo("totp")}>
            Use a code from the authenticator app
          </button>
        )}
        <ErrorText error={error} />
        {(!needsSecondFactor || codeKind !== null) && (
          <button type="submit" disabled={busy}>
            Sign in
          </button>
        )}
      </form>
      {!needsSecondFactor && securityKeysSupported() && (
        <p>
          <button type="button" class="secondary" disabled={busy} onClick={() => void withPasskey()}>
            Use a passkey instead of a password
          </button>
        </p>
      )}
      <p>
        New here? <a href="#/signup">Sign up</a>
      </p>
    </main>
  );
}
