// The layers of server/ (ARCHITECTURE.md): a folder imports only folders in layers below its own,
// type-only imports included; the wiring (server/*.ts, server/cli/) may import anything and
// nothing imports it. Checked in CI by `npm run lint:layers` (tools/layer-lint/run.mjs).
// A new folder must be given a layer here (the check refuses a folder it does not know).

/** Bottom first. Folders in one layer do not import each other. */
const LAYERS = [
  ["platform"],
  ["sql", "crypto"],
  ["store", "bus", "mail", "limits"],
  ["documents", "directory"],
  ["writes", "auth"],
  ["http"],
  ["events"],
  ["notices", "webhooks", "realtime"],
  ["identity"],
  ["audit", "lifecycle", "history"],
  ["backup"],
];
/** The composition root and the CLI: server/*.ts and server/cli/. */
const WIRING = "^server/([^/]+\\.[cm]?[jt]s$|cli/)";

const folderPath = (folders) => `^server/(${folders.join("|")})/`;

const layerRules = LAYERS.flatMap((layer, index) =>
  layer.map((folder) => {
    const notBelow = LAYERS.slice(index).flat().filter((other) => other !== folder);
    return {
      name: `layer-${folder}`,
      comment: `${folder}/ (layer ${index + 1}) may import only ${index === 0 ? "nothing of ours" : LAYERS.slice(0, index).flat().join(", ")}`,
      severity: "error",
      from: { path: folderPath([folder]) },
      to: { path: [folderPath(notBelow), WIRING] },
    };
  }),
);

module.exports = {
  LAYERS,
  forbidden: [
    ...layerRules,
    {
      name: "no-circular",
      comment: "no import cycle, types included (a cycle inside a folder is a knot too)",
      severity: "error",
      from: { path: "^server/" },
      to: { circular: true },
    },
    {
      name: "folder-has-a-layer",
      comment: "every folder of server/ is in LAYERS (or is the wiring)",
      severity: "error",
      from: { path: "^server/[^/]+/", pathNot: [folderPath(LAYERS.flat()), WIRING] },
      to: {},
    },
    {
      name: "services-not-router",
      comment: "domain services throw domain errors (ParleyError), not the router's HttpError: only routes and http/ import the router",
      severity: "error",
      from: { path: "^server/", pathNot: ["^server/http/", "-routes?\\.ts$", WIRING] },
      to: { path: "^server/http/router\\.ts$" },
    },
    {
      name: "server-not-client",
      comment: "server/ never imports client-sdk/ (ARCHITECTURE.md)",
      severity: "error",
      from: { path: "^server/" },
      to: { path: "^client-sdk/" },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    includeOnly: "^(server|protocol|client-sdk)/",
  },
};
