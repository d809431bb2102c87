// Security rules for server/ (and the protocol and SDK code it ships). Style stays with biome;
// these look for what a reviewer of a security-sensitive Node service looks for: dynamic code,
// unsafe regular expressions, non-literal file paths and requires, timing-unsafe comparisons,
// insecure randomness and URLs, unsafe buffer allocation. A finding is fixed, or justified at
// its line with `// eslint-disable-next-line <rule> -- <why>`.

import sdl from "@microsoft/eslint-plugin-sdl";
import tsParser from "@typescript-eslint/parser";
import security from "eslint-plugin-security";

export default [
  {
    files: ["server/**/*.ts", "protocol/**/*.ts", "client-sdk/**/*.ts"],
    ignores: ["**/node_modules/**", "client-sdk/dist/**"],
    languageOptions: { parser: tsParser, ecmaVersion: "latest", sourceType: "module" },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    plugins: { security, "@microsoft/sdl": sdl },
    rules: {
      ...security.configs.recommended.rules,
      // Bracket access with a variable key is how every map-like object is read; with objects
      // built from parsed input it is checked where that input is validated (zod), not per access.
      "security/detect-object-injection": "off",
      "security/detect-possible-timing-attacks": "error",
      "security/detect-eval-with-expression": "error",
      "security/detect-non-literal-require": "error",
      "security/detect-non-literal-regexp": "error",
      "security/detect-unsafe-regex": "error",
      "security/detect-buffer-noassert": "error",
      "security/detect-child-process": "error",
      "security/detect-non-literal-fs-filename": "error",
      "security/detect-pseudoRandomBytes": "error",
      "security/detect-new-buffer": "error",
      "security/detect-bidi-characters": "error",
      "@microsoft/sdl/no-insecure-random": "error",
      "@microsoft/sdl/no-insecure-url": ["error", { exceptions: ["^http://127\\.0\\.0\\.1", "^http://localhost", "^http://\\$\\{"] }],
      "@microsoft/sdl/no-unsafe-alloc": "error",
      "@microsoft/sdl/no-postmessage-star-origin": "error",
      "@microsoft/sdl/no-inner-html": "error",
      "@microsoft/sdl/no-html-method": "error",
      "@microsoft/sdl/no-document-write": "error",
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
    },
  },
  {
    // One clock (server/platform/clock.ts): wall time comes from the injected Clock that app.ts and
    // the CLI wiring make, durations from its monotonic clock. Reading the time anywhere else is a
    // seam a test cannot move (expiry, retention, timestamps following the system clock instead).
    files: ["server/**/*.ts"],
    ignores: ["server/platform/clock.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        { selector: "MemberExpression[object.name='Date'][property.name='now']", message: "take the time from the injected Clock (server/platform/clock.ts), not Date.now" },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: "new Date() reads the system clock: use new Date(now()) with the injected Clock (server/platform/clock.ts)" },
        { selector: "CallExpression[callee.name='Date']", message: "Date() reads the system clock: use new Date(now()) with the injected Clock (server/platform/clock.ts)" },
        { selector: "MemberExpression[object.name='performance'][property.name='now']", message: "durations come from monotonicClock (server/platform/clock.ts), not performance.now" },
      ],
    },
  },
  {
    // Computed file paths are a risk where request input flows: the HTTP routes, sockets, events,
    // webhooks, identity, history and notices. Everywhere else (store, backup, keys, audit, mail,
    // lifecycle, the CLI) paths come from the operator's configuration (PARLEY_DATA_DIR,
    // PARLEY_KEYS_DIR, key-file settings) or command line, never from a request.
    files: ["server/**/*.ts", "protocol/**/*.ts", "client-sdk/**/*.ts"],
    ignores: ["server/http/**", "server/realtime/**", "server/events/**", "server/webhooks/**", "server/identity/**", "server/history/**", "server/notices/**"],
    rules: { "security/detect-non-literal-fs-filename": "off" },
  },
];
