// One-time recovery codes as the app shows them right after the server issued them: the only
// time they are ever shown (the server keeps hashes), so the words say to save them now.

import type { ComponentChildren } from "preact";

/** The "save these" box: `lead` says what just happened and what the codes back up. */
export function RecoveryCodes({ codes, lead }: { codes: string[]; lead: ComponentChildren }) {
  return (
    <section class="once" aria-label="Recovery codes">
      <p>{lead}</p>
      <ul class="codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}
