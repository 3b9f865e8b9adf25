// A saved comparison (panel.save, nbtrack report): the compare panel drawn on a model that lives in
// this page instead of a kernel. Python precomputed the specs and every run's curves; the page does
// the rest of what the kernel would: the curves of the selected runs and the diff between them.
import embed from "vega-embed";
import panel from "./compare.js";
import { curveRows, diffFromTable } from "./saved.js";
import { decodeTable } from "./table.js";
import { useEmbed } from "./vega_loader.js";

function decodeBuffers(table) {
  const data = {};
  for (const [name, v] of Object.entries(table.data)) {
    if (v && typeof v === "object" && "$f64" in v) {
      const bytes = Uint8Array.from(atob(v.$f64), (c) => c.charCodeAt(0));
      data[name] = new DataView(bytes.buffer);
    } else {
      data[name] = v;
    }
  }
  return { ...table, data };
}

/** A model with anywidget's surface (get, set, on, save_changes, send) over the saved state. */
function savedModel(state) {
  const values = { ...state.traits, table: decodeBuffers(state.traits.table), saved_page: true };
  const table = decodeTable(values.table);
  const series = curveRows(state.curves);
  const listeners = new Map();
  const emit = (event, ...args) => { for (const fn of listeners.get(event) || []) fn(...args); };
  const put = (key, value) => { values[key] = value; emit(`change:${key}`); };
  const derive = (key) => {
    if (key === "selected" || key === "curve_key") {
      const chosen = values.selected.length ? values.selected.slice(0, 50) : state.logged.slice(0, 5);
      const keys = values.curve_key === "*" ? state.curve_keys : [values.curve_key];
      put("curve_runs", chosen);
      put("curve_data", series.filter((p) => chosen.includes(p.run_id) && keys.includes(p.key)));
      if (key === "curve_key" && state.curve_specs[values.curve_key]) {
        put("specs", { ...values.specs, curves: state.curve_specs[values.curve_key] });
      }
    }
    if (key === "selected") put("diff", diffFromTable(table, values.selected.slice(0, 8)));
  };
  values.curve_runs = [];
  values.curve_data = [];
  derive("selected");
  return {
    get: (key) => values[key],
    set: (key, value) => { values[key] = value; emit(`change:${key}`); derive(key); },
    save_changes: () => {},
    on: (event, fn) => { if (!listeners.has(event)) listeners.set(event, []); listeners.get(event).push(fn); },
    off: () => {},
    send: (msg) => {
      if (msg && msg.type === "edit") {
        emit("msg:custom", { type: "edited", action: msg.action, error: "this page is a saved copy: edit runs in the notebook or with the nbtrack command" });
      }
    },
  };
}

const state = JSON.parse(document.getElementById("nbt-state").textContent);
const model = savedModel(state);
if (state.curve_keys.length && !state.curve_keys.includes(model.get("curve_key"))) model.set("curve_key", state.curve_keys[0]);
useEmbed(embed);   // the page is one file: vega-embed is in it, not in a trait
panel.render({ model, el: document.getElementById("nbt-root") });
