// Stylesheets are bundled by esbuild (build.ts); importing one has no value.
declare module "*.css";
