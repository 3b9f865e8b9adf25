// A reproducibility check report: verdict, the outputs that differ, ranked causes with their evidence.
// Everything from the store is set as text, never as HTML.
import { h } from "./dom.js";

/**
 * The synced traits of ReportView (src/nbtrack/widgets/views.py); tests/test_compare.py checks the names.
 * @typedef {object} ReportModel
 * @property {{verdict?: string, a_label: string, b_label: string,
 *   outputs: {name: string, kind: string, status: string, detail: string}[],
 *   causes: {kind: string, detail: string, evidence: object}[]}} report  a check's report, as CheckReport.to_dict()
 */

/** @param {{model: {get: <K extends keyof ReportModel>(k: K) => ReportModel[K]}, el: HTMLElement}} args */
function render({ model, el }) {
  const root = h("div", "nbtrack-report");
  el.append(root);
  const draw = () => {
    const r = model.get("report") || {};
    root.replaceChildren();
    if (!r.verdict) return;
    const head = h("div", "nbt-r-head");
    head.append(h("span", `nbt-r-verdict nbt-r-${r.verdict}`, r.verdict.replace("_", " ")));
    head.append(h("span", "nbt-r-title", ` run ${r.b_label} against ${r.a_label}`));
    root.append(head);
    const diffs = (r.outputs || []).filter((o) => o.status !== "identical");
    root.append(h("div", "nbt-r-count", `${r.outputs.length - diffs.length} of ${r.outputs.length} outputs identical`));
    if (diffs.length) {
      const table = h("table", "nbt-r-outputs");
      const tr = h("tr");
      for (const t of ["output", "kind", "status", "detail"]) tr.append(h("th", null, t));
      table.append(tr);
      for (const o of diffs) {
        const row = h("tr", `nbt-r-${o.status}`);
        for (const v of [o.name, o.kind, o.status.replace("_", " "), o.detail]) row.append(h("td", null, String(v ?? "")));
        table.append(row);
      }
      root.append(table);
    }
    if ((r.causes || []).length) {
      root.append(h("div", "nbt-r-sub", r.verdict === "identical" ? "Risks" : "Likely causes"));
      const list = h("ol", "nbt-r-causes");
      for (const c of r.causes) {
        const item = h("li");
        item.append(h("b", null, c.kind.replace("_", " ")), document.createTextNode(`: ${c.detail}`));
        const more = h("details");
        more.append(h("summary", null, "evidence"), h("pre", null, JSON.stringify(c.evidence, null, 2)));
        item.append(more);
        list.append(item);
      }
      root.append(list);
    }
  };
  model.on("change:report", draw);
  draw();
}

export default { render };
