// vega-embed for the widgets that draw charts (compare.js, chart.js). It is 858 of the 900 KiB the
// panel's bundle was, so it comes in a trait of its own (_vega, js/vega.js) and is evaluated when the
// first chart is drawn: the panel's table is drawn without waiting for it (74-152 ms a panel on a fresh
// page in Chromium here). And once a page: each widget's module is its own (anywidget imports each
// from a new URL), so the evaluated code is kept on globalThis, by its text, for every widget that
// sends the same.
const EMBEDS = (globalThis.__nbtrackVegaEmbed ??= new Map());
let givenEmbed = null;

/** For a page that bundles vega-embed itself (js/page.js, a saved comparison, has no _vega). */
export function useEmbed(embed) { givenEmbed = embed; }

export function loadEmbed(code) {
  if (givenEmbed) return Promise.resolve(givenEmbed);
  if (!EMBEDS.has(code)) {
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    const loaded = import(/* webpackIgnore: true */ url).then((m) => m.default);
    loaded.finally(() => URL.revokeObjectURL(url)).catch(() => EMBEDS.delete(code));   // a failure is tried again
    EMBEDS.set(code, loaded);
  }
  return EMBEDS.get(code);
}
