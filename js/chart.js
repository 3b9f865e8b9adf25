// One Vega-Lite chart (an Altair chart's spec) drawn with the bundled vega-embed: no CDN needed.
import { h } from "./dom.js";
import { loadEmbed } from "./vega_loader.js";

/**
 * The synced traits of ChartView (src/nbtrack/widgets/views.py); tests/test_compare.py checks the names.
 * @typedef {object} ChartModel
 * @property {object} spec  a Vega-Lite spec with its data inline (an Altair chart's to_dict())
 * @property {string} renderer  "svg" or "canvas"
 * @property {string} _vega  vega-embed's bundle (js/vega.js), evaluated once a page (js/vega_loader.js)
 */

/** @param {{model: {get: <K extends keyof ChartModel>(k: K) => ChartModel[K]}, el: HTMLElement}} args */
function render({ model, el }) {
  const target = h("div", "nbtrack-chart");
  el.append(target);
  let result = null;
  const draw = async () => {
    if (result) { result.finalize(); result = null; }
    target.replaceChildren();
    const spec = model.get("spec");
    if (!spec || !Object.keys(spec).length) return;
    const embed = await loadEmbed(model.get("_vega"));
    result = await embed(target, structuredClone(spec), { renderer: model.get("renderer") || "svg", actions: false });
    target.dataset.rendered = "true";
  };
  model.on("change:spec", draw);
  draw();
  return () => { if (result) result.finalize(); };
}

export default { render };
