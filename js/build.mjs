// Bundles each widget into one self-contained ESM file inside the Python package (no CDN at run time)
// and prints the sizes, so growth of the bundle is seen at every build.
import { build, context } from "esbuild";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";

const out = "src/nbtrack/static";
const widgets = ["compare", "chart", "report"];
const pages = ["page"];   // the saved comparison (panel.save): the panel on a model that lives in the page
const modules = ["vega"];   // vega-embed for the panel's charts, sent apart from its module (js/compare.js)
const options = {
  entryPoints: [...widgets, ...pages, ...modules].map((w) => `js/${w}.js`),
  bundle: true, format: "esm", minify: true, outdir: out, target: "es2020", legalComments: "none",
  logLevel: "warning",
};
mkdirSync(out, { recursive: true });
for (const w of widgets) copyFileSync(`js/${w}.css`, `${out}/${w}.css`);
if (process.argv.includes("--watch")) {
  await (await context({ ...options, minify: false })).watch();
} else {
  await build(options);
  for (const w of [...widgets, ...pages, ...modules]) {
    const file = `${out}/${w}.js`;
    const kib = statSync(file).size / 1024;
    const gz = gzipSync(readFileSync(file)).length / 1024;
    console.log(`${file}: ${kib.toFixed(0)} KiB (${gz.toFixed(0)} KiB gzipped)`);
  }
}
