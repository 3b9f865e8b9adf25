// One Vega-Lite chart (an Altair chart's spec) drawn with the bundled vega-embed: no CDN needed.
import embed from "vega-embed";
import { h } from "./dom.js";

/**
 * The synced traits of ChartView (src/nbtrack/widgets/views.py); tests/test_compare.py checks the names.
 * @typedef {object} ChartModel
 * @property {object} spec  a Vega-Lite spec with its data inline (an Altair chart's to_dict())
 * @property {string} renderer  "svg" or "canvas"
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
    result = await embed(target, structuredClone(spec), { renderer: model.get("renderer") || "svg", actions: false });
    target.dataset.rendered = "true";
  };
  model.on("change:spec", draw);
  draw();
  return () => { if (result) result.finalize(); };
}

export default { render };
