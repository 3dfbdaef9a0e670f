// Builds the editor page into OUT, the folder the Python package serves: src/index.html as is,
// src/main.js and what it imports bundled into editor.js and editor.css (minified), and
// THIRD_PARTY.txt listing the bundled packages with their licenses.
// Run `npm ci && npm run build`, then commit OUT; scripts/check-editor-build verifies that.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// The only line to change when the Python package moves (scripts/check-editor-build reads it).
const OUT = "../addons/mockbox/editor/static";

// npm runs this in web/; anchor there anyway, since OUT (relative to web/) is emptied below.
process.chdir(fileURLToPath(new URL(".", import.meta.url)));

// OUT holds build output only: start empty, so a file no longer built cannot linger there.
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: process.cwd(), // esbuild took the directory it started in otherwise
  entryPoints: { editor: "src/main.js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  outdir: OUT,
  legalComments: "none",
  metafile: true,
  logLevel: "info",
});
copyFileSync("src/index.html", `${OUT}/index.html`);

const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (match) packages.add(match[1]);
}
const lines = [...packages].sort().map((name) => {
  const meta = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
  return `${meta.name} ${meta.version} (${meta.license})`;
});
writeFileSync(
  `${OUT}/THIRD_PARTY.txt`,
  `Bundled into editor.js by web/ (npm run build):\n${lines.join("\n")}\n`,
);
