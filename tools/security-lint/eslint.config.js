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
    // These modules read and write files under the data and keys directories, whose paths come
    // from the operator's configuration (PARLEY_DATA_DIR, PARLEY_KEYS_DIR, key-file settings) or
    // the operator's own command line, never from a request. Any other module that touches the
    // file system with a computed path is flagged and must justify it here or at the line.
    files: [
      "server/app.ts",
      "server/audit/audit-cli.ts",
      "server/audit/checkpoint-key.ts",
      "server/auth/host-tokens.ts",
      "server/auth/keys.ts",
      "server/auth/master-key.ts",
      "server/auth/secrets-key.ts",
      "server/backup/*.ts",
      "server/lifecycle/deletion-ledger.ts",
      "server/mail/dkim.ts",
      "server/mail/mail-cli.ts",
      "server/mail/outbox-mailer.ts",
      "server/store/envelope.ts",
      "server/store/master-rotation.ts",
      // The web app's build script: paths under the repository, from its own constants.
      "client-sdk/web-app/build.ts",
    ],
    rules: { "security/detect-non-literal-fs-filename": "off" },
  },
];
