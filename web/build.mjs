// Builds the web app into dist/: one bundled, minified script and stylesheet with
// content hashes in their names, index.html pointing at them, the manifest and icons,
// and a gzip copy (.gz) of every file next to it, which the hub serves to browsers
// that accept gzip. The output depends only on the sources (no timestamps), so CI can
// rebuild and compare it with what the hub embeds.
import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { pngIcon } from "./icons.mjs";

const out = "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022", "safari15"],
  entryNames: "[name]-[hash]",
  outdir: out,
  metafile: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith(".js"));
const css = outputs.find((f) => f.endsWith(".css"));
if (!js || !css) throw new Error(`expected a .js and a .css output, got ${outputs}`);

const html = readFileSync("static/index.html", "utf8")
  .replaceAll("%APP_JS%", js)
  .replaceAll("%APP_CSS%", css);
writeFileSync(join(out, "index.html"), html);
for (const f of readdirSync("static")) {
  if (f !== "index.html") copyFileSync(join("static", f), join(out, f));
}
writeFileSync(join(out, "icon-192.png"), pngIcon(192));
writeFileSync(join(out, "icon-512.png"), pngIcon(512));

let raw = 0;
let gz = 0;
for (const f of readdirSync(out).sort()) {
  const body = readFileSync(join(out, f));
  const z = gzipSync(body, { level: 9 });
  writeFileSync(join(out, f + ".gz"), z);
  raw += body.length;
  gz += z.length;
  console.log(`${f.padEnd(28)} ${String(body.length).padStart(7)} B  gzip ${String(z.length).padStart(6)} B`);
}
console.log(`${"total".padEnd(28)} ${String(raw).padStart(7)} B  gzip ${String(gz).padStart(6)} B`);
