// The compare panel: runs table, charts (Vega-Lite specs built by Altair in Python) and a diff,
// linked by one selection that lives in the model ("selected": run ids) and so in Python too.
// Every string from the store is set as textContent: never as HTML.
import { h, select } from "./dom.js";
import { loadEmbed } from "./vega_loader.js";
import { editInPlace, editToolbar, sendEdit } from "./edits.js";
import {
  brushSelect, clickSelect, constantColumns, decodeTable, formatValue, pagedRange, rowOrder, rowsFor,
  selectionOf, starredFirst, visibleColumns, windowRange, FilterError,
} from "./table.js";

/**
 * The synced traits of ComparePanel (src/nbtrack/widgets/compare.py), written down once here;
 * tests/test_compare.py checks these names against the Python traits.
 * @typedef {object} CompareModel
 * @property {{columns: {name: string, group: string, key: string, kind: string, hidden: boolean}[],
 *   data: Object<string, (DataView|Array)>, n: number, paged?: boolean, total?: number, offset?: number,
 *   all?: number, filter?: string, sort?: ?string, desc?: boolean, error?: string}} table  the runs, column
 *   by column; numbers as float64 buffers. A paged table (too many runs to send) holds the rows from
 *   `offset` of the `total` that pass the filter, sorted and filtered in Python: the page asks for others
 * @property {string[]|{count: number, ids: string[]}} selected  selected run ids, shared with Python (set
 *   here on click and brush); a paged panel's is a count and the selected ids it shows, and Python
 *   selects on the page's messages (view, click, brush, group, clear)
 * @property {{columns: object[], data: Object<string, (DataView|Array)>, n: number}} sample  a paged panel's
 *   random sample of runs (the chart fields only) for the charts drawn run by run; empty otherwise
 * @property {Object<string, object>} specs  Vega-Lite spec per tab (scatter, parallel, curves, bars), data left out
 * @property {object[]} curve_data  rows {run_id, label, key, step, value} for the curves tab
 * @property {string[]} curve_keys  metric keys that have curves
 * @property {string} curve_key  the curve metric shown ("*" for all)
 * @property {string[]} curve_runs  run ids whose curves are in curve_data
 * @property {{runs?: {label: string}[], sections?: {title: string, rows: {key: string, values: string[]}[]}[],
 *   source?: {lines: string[]}[]}} diff  what differs between the selected runs
 * @property {?string} x  scatter x column
 * @property {?string} y  scatter y column, and the metric the parallel and bar charts end in
 * @property {?string} color  scatter colour column
 * @property {?string} group  the bar chart's grouping column
 * @property {string} renderer  "auto", "svg" or "canvas"
 * @property {string} status  the line above the table (counts, live runs)
 * @property {string} _vega  vega-embed's bundle (js/vega.js), evaluated when the first chart is drawn
 *
 * A saved page (js/page.js) adds `saved_page: true` to the same model: no kernel behind it.
 */

const ROW_H = 26;
const WINDOW = 200; // rows a paged table asks Python for at a time
const TABLE_H = 286;
const CANVAS_PAST = 3000; // marks; SVG below (crisp, accessible, testable), canvas above
const TABS = [["scatter", "Scatter"], ["parallel", "Parallel"], ["curves", "Curves"], ["bars", "Bars"], ["diff", "Diff"]];

/** @param {{model: {get: <K extends keyof CompareModel>(k: K) => CompareModel[K]}, el: HTMLElement}} args */
function render({ model, el }) {
  const started = performance.now();
  const state = {
    filter: "", sort: null, order: [], constant: new Set(), shown: new Set(), hidden: new Set(),
    showConstant: false, tab: "scatter", anchor: null, result: null, drawnSpec: null, drawnTab: null,
    filterError: "", starredFirst: false,
  };
  const root = h("div", "nbtrack-panel");
  el.append(root);

  // toolbar
  const bar = h("div", "nbt-toolbar");
  const status = h("span", "nbt-status");
  const filter = h("input", "nbt-filter");
  filter.type = "search";
  filter.placeholder = "filter: lr>=0.01 status=finished rf";
  filter.setAttribute("aria-label", "filter runs");
  const filterError = h("span", "nbt-error");
  let pagedPlaceholder = false;
  const colButton = h("button", "nbt-button nbt-columns-button", "Columns");
  const constToggle = h("button", "nbt-button nbt-constant");
  const selInfo = h("span", "nbt-selinfo");
  const clearSel = h("button", "nbt-button nbt-clear", "Clear selection");
  const starToggle = h("button", "nbt-button nbt-starred-first", "★ first");
  starToggle.title = "starred runs first";
  bar.append(status, filter, filterError, colButton, constToggle, starToggle, selInfo, clearSel);
  const edits = editToolbar(model, () => {
    const s = selectionOf(model.get("selected"));
    return { runs: (model.get("table") || {}).paged ? "selected" : s.ids, count: s.count };
  });
  // a saved page (panel.save) has no kernel: it cannot edit runs or rebuild a chart for other axes
  const saved = !!model.get("saved_page");
  edits.el.hidden = saved;
  const picker = h("div", "nbt-picker");
  picker.hidden = true;

  // table
  const scroller = h("div", "nbt-table");
  scroller.style.height = `${TABLE_H}px`;
  scroller.setAttribute("role", "grid");
  const header = h("div", "nbt-header");
  const body = h("div", "nbt-body");
  scroller.append(header, body);

  // views
  const tabs = h("div", "nbt-tabs");
  tabs.setAttribute("role", "tablist");
  const tabButtons = {};
  for (const [key, label] of TABS) {
    const b = h("button", "nbt-tab", label);
    b.dataset.tab = key;
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => { state.tab = key; drawView(); });
    tabButtons[key] = b;
    tabs.append(b);
  }
  const controls = h("div", "nbt-controls");
  const chart = h("div", "nbt-chart");
  const diffView = h("div", "nbt-diff");
  root.append(bar, edits.el, picker, scroller, tabs, controls, chart, diffView);

  let decoded = null;
  const table = () => {
    if (!decoded) decoded = decodeTable(model.get("table") || { columns: [], data: {}, n: 0 });
    return decoded;
  };
  const selected = () => selectionOf(model.get("selected")).ids;
  const selectedCount = () => selectionOf(model.get("selected")).count;
  // a paged panel's table holds a window of rows; Python sorts, filters and selects (table.paged)
  const paged = () => !!table().paged;
  // seq: which message a window answers (Python merges messages that come while it is busy)
  const request = { at: null, sent: 0, seq: 0 };
  function askView(change = {}) {
    const t = table();
    request.seq += 1;
    const message = { type: "view", offset: t.offset || 0, limit: WINDOW, ...change, seq: request.seq };
    request.at = message.offset;
    request.sent = performance.now();
    model.send(message);
  }
  const idsInOrder = () => { const ids = table().data.run_id || []; return state.order.map((i) => ids[i]); };

  function setSelected(ids) {
    if (paged()) { if (!ids.length) model.send({ type: "clear" }); return; }   // Python selects there
    model.set("selected", ids);
    model.save_changes();
    applySelection();
  }

  // -- table --------------------------------------------------------------------------------------
  function recompute() {
    const t = table();
    if (t.paged) {
      state.order = Array.from({ length: t.n }, (_, i) => i);
      state.constant = new Set();
      state.filterError = t.error ? t.error.split("\n")[0] : "";
      filterError.textContent = state.filterError;
      filterError.title = t.error || "";
      filter.classList.toggle("nbt-invalid", !!state.filterError);
      return;
    }
    try {
      state.order = rowOrder(t, state.filter, state.sort);
      if (state.starredFirst) state.order = starredFirst(t, state.order);
      state.filterError = "";
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      state.filterError = e.message;
      state.order = rowOrder(t, "", state.sort);
    }
    state.constant = constantColumns(t, state.order);
    filterError.textContent = state.filterError;
    filter.classList.toggle("nbt-invalid", !!state.filterError);
  }

  function columns() {
    return visibleColumns(table(), state.constant, state);
  }

  function widthOf(col) {
    if (col.name === "name") return 170;
    if (col.name === "run_id") return 84;
    if (col.name === "started_at") return 150;
    if (col.name === "status") return 86;
    if (col.name === "tags") return 120;
    if (col.name === "starred") return 70;
    if (col.name === "note") return 160;
    return 104;
  }

  function drawHeader() {
    const cols = columns();
    const template = cols.map((c) => `${widthOf(c)}px`).join(" ");
    header.replaceChildren();
    header.style.gridTemplateColumns = template;
    for (const col of cols) {
      const cell = h("div", `nbt-hcell nbt-g-${col.group}`);
      cell.title = `${col.name} (click to sort)`;
      cell.setAttribute("role", "columnheader");
      if (col.group !== "run") cell.append(h("span", "nbt-hgroup", col.group));
      cell.append(h("span", "nbt-hkey", col.key));
      if (state.sort && state.sort.column === col.name) cell.append(h("span", "nbt-sort", state.sort.desc ? " ▼" : " ▲"));
      cell.addEventListener("click", () => {
        const s = state.sort;
        state.sort = !s || s.column !== col.name ? { column: col.name, desc: false }
          : !s.desc ? { column: col.name, desc: true } : null;
        if (paged()) {
          scroller.scrollTop = 0;
          askView({ offset: 0, sort: state.sort ? state.sort.column : null, desc: !!(state.sort && state.sort.desc) });
          drawHeader();
          return;
        }
        refreshTable();
      });
      header.append(cell);
    }
    const total = cols.reduce((a, c) => a + widthOf(c), 0);
    header.style.width = body.style.width = `${total}px`;
    constToggle.hidden = paged();
    constToggle.textContent = state.showConstant ? `Hide constant columns`
      : `${[...state.constant].filter((n) => !table().columns.find((c) => c.name === n).hidden).length} constant columns hidden`;
  }

  function drawRows() {
    const cols = columns();
    const template = cols.map((c) => `${widthOf(c)}px`).join(" ");
    const t = table();
    const ids = t.data.run_id || [];
    const sel = new Set(selected());
    let start, end, top = (r) => r * ROW_H, offset = 0;
    if (t.paged) {
      const range = pagedRange(scroller.scrollTop, TABLE_H, ROW_H, t.total);
      ({ start, end, top } = range);
      offset = t.offset || 0;
      body.style.height = `${range.body}px`;
      const missing = start < offset || Math.min(end, t.total) > offset + t.n;
      const wanted = Math.max(0, start - Math.floor((WINDOW - (end - start)) / 2));
      if (missing && request.at !== wanted) askView({ offset: wanted });
    } else {
      body.style.height = `${state.order.length * ROW_H}px`;
      [start, end] = windowRange(scroller.scrollTop, TABLE_H, ROW_H, state.order.length);
    }
    const frag = document.createDocumentFragment();
    for (let r = start; r < end; r++) {
      const i = t.paged ? r - offset : state.order[r];
      const row = h("div", "nbt-row");
      row.setAttribute("role", "row");
      row.style.top = `${top(r)}px`;
      if (t.paged && (i < 0 || i >= t.n)) {   // not here yet: Python is sending it
        row.classList.add("nbt-loading");
        row.style.gridTemplateColumns = template;
        row.append(h("div", "nbt-cell", "…"));
        frag.append(row);
        continue;
      }
      row.style.gridTemplateColumns = template;
      row.dataset.runId = ids[i];
      if (sel.has(ids[i])) row.classList.add("nbt-selected");
      for (const col of cols) {
        const v = t.data[col.name][i];
        const cell = h("div", `nbt-cell nbt-k-${col.kind} nbt-c-${col.name.replace(/[^\w-]/g, "_")}`,
          col.name === "run_id" ? String(v).slice(0, 8) : formatValue(v, col.kind));
        if (col.name === "status") cell.classList.add(`nbt-status-${v}`);
        cell.title = v === null || v === undefined ? "" : String(v);
        editable(cell, col.name, ids[i], i);
        row.append(cell);
      }
      row.addEventListener("click", (ev) => {
        const id = ids[i];
        if (paged()) {
          model.send({ type: "click", run: id, ctrl: ev.ctrlKey || ev.metaKey, shift: ev.shiftKey });
          return;
        }
        const next = clickSelect(selected(), idsInOrder(), id, {
          ctrl: ev.ctrlKey || ev.metaKey, shift: ev.shiftKey, anchor: state.anchor,
        });
        state.anchor = id;
        setSelected(next);
      });
      frag.append(row);
    }
    body.replaceChildren(frag);
  }

  // a run's label (shown in its name cell), note and star are edited in place
  function editable(cell, column, id, i) {
    const data = table().data;
    if (saved) {
      if (column === "name" && data.run_label && data.run_label[i]) cell.textContent = data.run_label[i];
      if (column === "starred") cell.textContent = data.starred[i] ? "★" : "";
      return;
    }
    if (column === "name") {
      const label = data.run_label ? data.run_label[i] : null;
      if (label) { cell.textContent = label; cell.title = `${label} (name: ${data.name[i]})`; }
      cell.addEventListener("dblclick", () => editInPlace(cell, label, false, (v) => sendEdit(model, "rename", [id], v || null)));
    } else if (column === "note") {
      cell.addEventListener("dblclick", () => editInPlace(cell, data.note[i], true, (v) => sendEdit(model, "note", [id], v || null)));
    } else if (column === "starred") {
      cell.textContent = data.starred[i] ? "★" : "☆";
      cell.title = data.starred[i] ? "starred: click to unstar" : "click to star";
      cell.addEventListener("click", (ev) => { ev.stopPropagation(); sendEdit(model, "star", [id], !data.starred[i]); });
    }
  }

  let scrollPending = false;
  scroller.addEventListener("scroll", () => {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(() => { scrollPending = false; drawRows(); });
  });

  function drawPicker() {
    picker.replaceChildren();
    for (const group of ["run", "params", "metrics", "values"]) {
      const cols = table().columns.filter((c) => c.group === group);
      if (!cols.length) continue;
      const box = h("fieldset", "nbt-pick-group");
      box.append(h("legend", null, group));
      const visible = new Set(columns().map((c) => c.name));
      for (const col of cols) {
        const label = h("label", "nbt-pick-col");
        const check = h("input");
        check.type = "checkbox";
        check.checked = visible.has(col.name);
        check.addEventListener("change", () => {
          if (check.checked) { state.shown.add(col.name); state.hidden.delete(col.name); }
          else { state.hidden.add(col.name); state.shown.delete(col.name); }
          drawHeader(); drawRows();
        });
        label.append(check, h("span", null, col.key + (state.constant.has(col.name) ? " (constant)" : "")));
        box.append(label);
      }
      picker.append(box);
    }
  }

  function refreshTable() {
    recompute();
    drawHeader();
    drawRows();
    if (!picker.hidden) drawPicker();
    const t = table();
    const shown = t.paged ? (t.filter ? t.total : null) : (state.filter ? state.order.length : null);
    status.textContent = `${model.get("status") || ""}${shown !== null ? ` · ${shown.toLocaleString("en-US")} shown` : ""}`;
    // a paged table's order is Python's: starred runs first is a sort by the starred column there
    starToggle.hidden = !!t.paged;
    scroller.setAttribute("aria-rowcount", String(t.paged ? t.total : state.order.length));
    if (t.paged !== pagedPlaceholder) {
      pagedPlaceholder = !!t.paged;
      // a paged filter runs in Python, in the language of nbtrack.runs(where=...)
      filter.placeholder = t.paged ? "filter: metrics.acc > 0.9 and status = 'finished'"
        : "filter: lr>=0.01 status=finished rf";
    }
  }

  let filterTimer = null;
  filter.addEventListener("input", () => {
    state.filter = filter.value;
    if (paged()) {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => { scroller.scrollTop = 0; askView({ offset: 0, filter: state.filter }); }, 250);
      return;
    }
    refreshTable();
    drawView();
  });
  colButton.addEventListener("click", () => { picker.hidden = !picker.hidden; if (!picker.hidden) drawPicker(); });
  constToggle.addEventListener("click", () => { state.showConstant = !state.showConstant; refreshTable(); });
  starToggle.addEventListener("click", () => {
    state.starredFirst = !state.starredFirst;
    starToggle.classList.toggle("nbt-active", state.starredFirst);
    refreshTable();
    drawView();
  });
  clearSel.addEventListener("click", () => (paged() ? model.send({ type: "clear" }) : setSelected([])));

  // -- charts -------------------------------------------------------------------------------------
  function finalize() {
    if (state.result) { state.result.finalize(); state.result = null; }
    state.drawnSpec = null;
  }

  function controlsFor(tab) {
    controls.replaceChildren();
    const cols = table().columns.filter((c) => !c.hidden);
    const opts = cols.map((c) => [c.name, c.name]);
    if (tab === "scatter") {
      const pick = (name) => select(opts, model.get(name), (v) => { model.set(name, v); model.save_changes(); }, name);
      controls.append(pick("x"), pick("y"), select([["", "(none)"], ...opts], model.get("color") || "",
        (v) => { model.set("color", v || null); model.save_changes(); }, "color"));
    } else if (tab === "curves") {
      const keys = model.get("curve_keys") || [];
      controls.append(select([...keys.map((k) => [k, k]), ["*", "(all)"]], model.get("curve_key"),
        (v) => { model.set("curve_key", v); model.save_changes(); }, "metric"));
      const n = (model.get("curve_runs") || []).length;
      controls.append(h("span", "nbt-hint", selected().length ? `${n} selected runs`
        : `latest ${n} runs with curves; select runs to compare theirs`));
    }
    if (tab === "parallel" || tab === "bars") {
      // the metric these charts end in is the scatter's y when that is a metric
      const metrics = cols.filter((c) => c.group === "metrics").map((c) => [c.name, c.key]);
      const meta = ((model.get("specs") || {})[tab] || {}).usermeta?.nbtrack || {};
      if (metrics.length) {
        controls.append(select(metrics, meta.metric, (v) => { model.set("y", v); model.save_changes(); }, "metric"));
      }
      if (tab === "bars") {
        controls.append(select(opts, meta.group, (v) => { model.set("group", v); model.save_changes(); }, "group by"));
      }
    }
  }

  function freezeAxes() {   // in a saved page only the curves' metric can change (its specs were saved)
    if (!saved || state.tab === "curves") return;
    for (const sel of controls.querySelectorAll("select")) {
      sel.disabled = true;
      sel.title = "a saved copy: choose axes in the notebook and save again";
    }
  }

  let sampleTable = null;
  function datasetFor(tab) {
    if (tab === "curves") return model.get("curve_data") || [];
    const spec = (model.get("specs") || {})[tab];
    if (spec?.usermeta?.nbtrack?.aggregated) return [];   // its counts are inline in the spec
    if (paged()) {
      if (!sampleTable) sampleTable = decodeTable(model.get("sample") || { columns: [], data: {}, n: 0 });
      return rowsFor(sampleTable, Array.from({ length: sampleTable.n }, (_, i) => i), spec?.usermeta?.nbtrack?.fields);
    }
    return rowsFor(table(), state.order, spec?.usermeta?.nbtrack?.fields);
  }

  function rendererFor(tab, rows) {
    const r = model.get("renderer");
    if (r && r !== "auto") return r;
    if (tab === "curves") return (model.get("curve_runs") || []).length > 200 ? "canvas" : "svg";
    const marks = tab === "parallel" ? rows.length : rows.length;
    return marks > CANVAS_PAST ? "canvas" : "svg";
  }

  async function drawChart(tab) {
    const spec = (model.get("specs") || {})[tab];
    if (!spec) { finalize(); chart.replaceChildren(h("div", "nbt-hint", "no runs to chart yet")); return; }
    const rows = datasetFor(tab);
    const name = tab === "curves" ? "curves" : "runs";
    if (state.result && state.drawnSpec === spec && state.drawnTab === tab) {
      if (!spec.usermeta?.nbtrack?.aggregated) state.result.view.data(name, rows);
      await state.result.view.signal("selected_ids", selected()).runAsync();
      return;
    }
    finalize();
    chart.replaceChildren();
    const target = h("div", "nbt-vega");
    chart.append(target);
    const prepared = structuredClone(spec);
    // the data arrives after the first layout: lay out again when it (or the selection) changes,
    // or axis labels and legends keep the width they had with no data and are cut off
    prepared.autosize = { type: "pad", ...(prepared.autosize || {}), resize: true };
    const embed = await loadEmbed(model.get("_vega"));
    const result = await embed(target, prepared, {
      renderer: rendererFor(tab, rows), actions: false, tooltip: true,
    });
    state.result = result;
    state.drawnSpec = spec;
    state.drawnTab = tab;
    const view = result.view;
    const aggregated = !!spec.usermeta?.nbtrack?.aggregated;
    if (!aggregated) view.data(name, rows);
    view.signal("selected_ids", selected());
    view.addEventListener("click", (event, item) => onChartClick(tab, event, item));
    if (tab === "scatter" && (spec.params || []).some((p) => p.name === "brush")) {
      let timer = null;
      view.addSignalListener("brush", (_n, value) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (paged()) {   // every run inside, counted in Python: the page has only some of them
            if (value && Object.keys(value).length) model.send({ type: "brush", ranges: value });
            return;
          }
          const ids = brushSelect(table(), state.order, value);
          if (ids !== null) setSelected(ids);
        }, 150);
      });
    }
    await view.runAsync();
    chart.dataset.rendered = tab;
    // how long the front end took to first paint (read by the end-to-end test)
    if (!root.dataset.paintedMs) root.dataset.paintedMs = String(Math.round(performance.now() - started));
  }

  function onChartClick(tab, event, item) {
    const datum = item && item.datum;
    const additive = event && (event.shiftKey || event.ctrlKey || event.metaKey);
    if (paged()) {
      if (!datum) { if (!additive && tab !== "scatter") model.send({ type: "clear" }); return; }
      if (datum.run_id) { model.send({ type: "click", run: datum.run_id, ctrl: additive }); return; }
      const group = ((model.get("specs") || {}).bars || {}).usermeta?.nbtrack?.group;
      const value = group ? (datum[group] ?? datum[group.replace(/\./g, "\\.")]) : undefined;
      if (tab === "bars" && value !== undefined) model.send({ type: "group", column: group, value, add: additive });
      return;
    }
    if (!datum) { if (!additive && tab !== "scatter") setSelected([]); return; }
    let ids = [];
    if (datum.run_id) ids = [datum.run_id];
    else if (tab === "bars") {
      const group = ((model.get("specs") || {}).bars || {}).usermeta?.nbtrack?.group;
      const t = table();
      const values = group && t.data[group];
      const value = group ? (datum[group] ?? datum[group.replace(/\./g, "\\.")]) : undefined;
      if (values) ids = state.order.filter((i) => values[i] === value).map((i) => t.data.run_id[i]);
    }
    if (!ids.length) return;
    if (ids.length === 1) {
      setSelected(clickSelect(selected(), idsInOrder(), ids[0], { ctrl: additive }));
    } else {
      setSelected(additive ? [...new Set([...selected(), ...ids])] : ids);
    }
  }

  function drawDiff() {
    const d = model.get("diff") || {};
    diffView.replaceChildren();
    if (!d.runs) {
      diffView.append(h("div", "nbt-hint", "select two or more runs (click, ctrl-click, shift-click or brush) to see what differs"));
      return;
    }
    diffView.append(h("div", "nbt-diff-title", `What differs between ${d.runs.length} runs (the first is the reference)`));
    if (!d.sections.length && !d.source.length) diffView.append(h("div", "nbt-hint", "nothing differs"));
    for (const section of d.sections) {
      const tbl = h("table", "nbt-diff-table");
      const head = h("tr");
      head.append(h("th", "nbt-diff-section", section.title));
      for (const r of d.runs) head.append(h("th", null, r.label));
      tbl.append(head);
      for (const row of section.rows) {
        const tr = h("tr");
        tr.append(h("td", "nbt-diff-key", row.key));
        row.values.forEach((v, i) => tr.append(h("td", i && v !== row.values[0] ? "nbt-changed" : null, v)));
        tbl.append(tr);
      }
      diffView.append(tbl);
    }
    for (const src of d.source) {
      const pre = h("pre", "nbt-diff-source");
      for (const line of src.lines) {
        const cls = line.startsWith("+") ? "nbt-add" : line.startsWith("-") ? "nbt-del" : line.startsWith("@@") ? "nbt-hunk" : null;
        pre.append(h("span", cls, line + "\n"));
      }
      diffView.append(h("div", "nbt-diff-section", "source"), pre);
    }
  }

  let drawing = Promise.resolve();
  function drawView() {
    for (const [key, b] of Object.entries(tabButtons)) {
      b.classList.toggle("nbt-active", key === state.tab);
      b.setAttribute("aria-selected", String(key === state.tab));
    }
    const n = selectedCount();
    tabButtons.diff.textContent = n >= 2 ? `Diff (${n})` : "Diff";
    controlsFor(state.tab);
    freezeAxes();
    if (state.tab === "diff") {
      finalize();
      chart.replaceChildren();
      chart.hidden = true;
      diffView.hidden = false;
      drawDiff();
      return;
    }
    chart.hidden = false;
    diffView.hidden = true;
    const tab = state.tab;
    drawing = drawing.then(() => drawChart(tab)).catch((e) => {
      chart.replaceChildren(h("div", "nbt-error", `chart failed: ${e.message}`));
      state.result = null;
    });
  }

  function applySelection() {
    const n = selectedCount();
    edits.update();
    selInfo.textContent = n ? `${n} selected` : "";
    clearSel.hidden = !n;
    // the rows stay (a double-click's two clicks must land on the same cell); only their marks change
    const sel = new Set(selected());
    for (const row of body.children) row.classList.toggle("nbt-selected", sel.has(row.dataset.runId));
    if (state.result) {
      state.result.view.signal("selected_ids", selected()).runAsync().catch(() => {});
    }
    tabButtons.diff.textContent = n >= 2 ? `Diff (${n})` : "Diff";
  }

  model.on("change:table", () => {
    const before = decoded;
    decoded = null;
    if (table().paged && before && before.paged) {
      // a new window of the same view: redraw the rows only; the charts did not change
      refreshTable();
      // how long a scroll, sort or filter took to come back drawn (read by the end-to-end test)
      if (request.sent && table().seq === request.seq) {
        root.dataset.roundTripMs = String(Math.round(performance.now() - request.sent));
        request.sent = 0;
      }
      return;
    }
    refreshTable();
    drawView();
  });
  model.on("change:sample", () => { sampleTable = null; if (paged() && state.tab !== "diff") drawView(); });
  model.on("change:status", () => refreshTable());
  model.on("change:selected", () => { applySelection(); if (state.tab === "diff") drawView(); });
  model.on("change:specs", () => drawView());
  model.on("change:curve_data", () => { if (state.tab === "curves") drawView(); });
  model.on("change:curve_keys", () => { if (state.tab === "curves") controlsFor("curves"); });
  model.on("change:diff", () => { if (state.tab === "diff") drawView(); });
  model.on("msg:custom", (msg) => { if (msg && msg.type === "edited") edits.answer(msg); });

  refreshTable();
  applySelection();
  drawView();
  root.dataset.ready = "true";
  return () => finalize();
}

export default { render };
