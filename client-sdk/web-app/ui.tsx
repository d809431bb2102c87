// Small building blocks shared by the views: labelled fields, error text, the hash router, and a
// hook that loads data and reports failures in words.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ErrorCode } from "../index.ts";
import { ApiError, describeError } from "./api.ts";

/** A labelled input: the label is the field's accessible name. */
export function Field(props: {
  label: string;
  value: string;
  onInput: (value: string) => void;
  type?: "text" | "email" | "password" | "url";
  autocomplete?: string;
  required?: boolean;
  placeholder?: string;
  inputMode?: "numeric" | "email" | "text";
}) {
  const id = `field-${props.label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        // Preact types each input type with its own attribute set; these four share the ones used here.
        type={(props.type ?? "text") as "text"}
        value={props.value}
        autocomplete={props.autocomplete}
        required={props.required}
        placeholder={props.placeholder}
        inputMode={props.inputMode}
        onInput={(event) => props.onInput((event.currentTarget as HTMLInputElement).value)}
      />
    </div>
  );
}

/** An error message announced to assistive technology. */
export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  // An organisation that requires two-factor lets members who have not enrolled do only that.
  if (error instanceof ApiError && error.code === ErrorCode.TwoFactorEnrolmentRequired) {
    // The server says which: two-factor of any kind, or a security key specifically.
    const what = /security key/i.test(error.message) ? "a security key" : "two-factor authentication";
    return (
      <p class="error" role="alert">
        Your organisation requires {what}: <a href="#/settings">set it up in Settings</a> first.
      </p>
    );
  }
  return (
    <p class="error" role="alert">
      {describeError(error)}
    </p>
  );
}

/** A titled section of a page. */
export function Panel(props: { title: string; children: ComponentChildren; headingLevel?: 2 | 3 }) {
  const Heading = props.headingLevel === 3 ? "h3" : "h2";
  return (
    <section class="panel" aria-label={props.title}>
      <Heading>{props.title}</Heading>
      {props.children}
    </section>
  );
}

/** The location hash's path, e.g. "/conversations/cnv_1" (the app routes on the hash: one page at /). */
export function useHashPath(): string {
  const read = () => location.hash.replace(/^#/, "") || "/";
  const [path, setPath] = useState(read);
  useEffect(() => {
    const update = () => setPath(read());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return path;
}

/** Goes to an app path. */
export function navigate(path: string): void {
  location.hash = path;
}

/** Loads something, with its error, and a reload function. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [round, setRound] = useState(0);
  // The caller names what the load depends on (deps).
  useEffect(() => {
    let live = true;
    load().then(
      (value) => {
        if (live) {
          setData(value);
          setError(null);
        }
      },
      (failure: unknown) => {
        if (live) setError(failure);
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, round]);
  const reload = useCallback(() => setRound((n) => n + 1), []);
  return { data, error, reload };
}

/** Formats a time for people (local time, short). */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
