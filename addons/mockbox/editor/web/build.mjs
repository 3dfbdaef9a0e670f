// Bundles src/ into ../static/editor.js and ../static/editor.css (minified, one file each),
// the files the Python package serves, and lists the bundled packages with their licenses in
// ../static/THIRD_PARTY.txt. Run `npm ci && npm run build`, then commit ../static.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";

const result = await esbuild.build({
  entryPoints: { editor: "src/main.js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  outdir: "../static",
  legalComments: "none",
  metafile: true,
  logLevel: "info",
});

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
  "../static/THIRD_PARTY.txt",
  `Bundled into editor.js by addons/mockbox/editor/web (npm run build):\n${lines.join("\n")}\n`,
);
