#!/usr/bin/env node
// Entry point of the `parley` command: registers the TypeScript loader (the project runs from
// source) and hands over to server/cli.ts.
import { register } from "tsx/esm/api";

register();
await import("../server/cli.ts");
