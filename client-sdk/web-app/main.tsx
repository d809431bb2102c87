// Parley's own web app: restores the session from the refresh cookie, then routes on the location
// hash between signing in, the conversation list, a conversation and the settings. Built by
// build.ts into dist/web-app and served by the server at `/`.

import "./styles.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { describeError, onSignedOut } from "./api.ts";
import { SignInView, SignUpView } from "./auth-views.tsx";
import { ConversationList, NewConversation } from "./conversation-list.tsx";
import { ConversationView } from "./conversation-view.tsx";
import { restoreSession, type Session, signOut } from "./session.ts";
import { SettingsView } from "./settings-view.tsx";
import { navigate, useHashPath } from "./ui.tsx";

function Header({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  return (
    <header class="top">
      <nav aria-label="Main">
        <a href="#/" class="brand">
          Parley
        </a>
        <a href="#/">Conversations</a>
        <a href="#/settings">Settings</a>
      </nav>
      <div class="who">
        <span>
          {session.user.name} · {session.organisation.name}
        </span>
        <button type="button" class="secondary" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function SignedIn({ session, path, setSession }: { session: Session; path: string; setSession: (s: Session | null) => void }) {
  const match = /^\/conversations\/([^/]+)$/.exec(path);
  let page = <ConversationList />;
  if (path === "/conversations/new") page = <NewConversation />;
  else if (match) page = <ConversationView key={match[1]} session={session} id={decodeURIComponent(match[1])} />;
  else if (path === "/settings") page = <SettingsView session={session} onSession={setSession} />;
  return (
    <>
      <Header
        session={session}
        onSignOut={() => {
          void signOut(session).finally(() => {
            setSession(null);
            navigate("/signin");
          });
        }}
      />
      {page}
    </>
  );
}

function App() {
  const path = useHashPath();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  // Marks when the first real screen is up (the load-time measurement reads it).
  useEffect(() => {
    if (session !== undefined && performance.getEntriesByName("parley-ready").length === 0) performance.mark("parley-ready");
  }, [session]);
  useEffect(() => {
    restoreSession().then(setSession, (failure: unknown) => {
      setError(failure);
      setSession(null);
    });
    return onSignedOut(() => setSession(null));
  }, []);
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) {
    return (
      <>
        {error ? (
          <p class="error" role="alert">
            {describeError(error)}
          </p>
        ) : null}
        {path === "/signup" ? <SignUpView /> : <SignInView onSession={setSession} />}
      </>
    );
  }
  if (path === "/signin" || path === "/signup") {
    navigate("/");
    return null;
  }
  return <SignedIn session={session} path={path} setSession={setSession} />;
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
