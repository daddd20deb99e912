// Builds the console into ioc/api/console_static/ (git-ignored, packaged with ioc).
// One bundle (app.js), one stylesheet (app.css, Leaflet's included), index.html and
// favicon.ico (drawn by favicon.mjs; also served at /favicon.ico).
// Nothing here or in the page refers to anything outside the serving origin.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { favicon } from "./favicon.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "ioc", "api", "console_static");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true, minify: true, sourcemap: true, format: "esm", target: ["chrome110", "firefox115"],
  outdir: out, legalComments: "linked", logLevel: "info",
});
await build({
  entryPoints: { app: join(here, "src", "style.css") },
  bundle: true, minify: true, outdir: out, loader: { ".png": "file" }, logLevel: "info",
});
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
writeFileSync(join(out, "favicon.ico"), favicon());
