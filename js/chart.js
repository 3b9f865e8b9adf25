// One Vega-Lite chart (an Altair chart's spec) drawn with the bundled vega-embed: no CDN needed.
import embed from "vega-embed";

function render({ model, el }) {
  const target = document.createElement("div");
  target.className = "nbtrack-chart";
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
