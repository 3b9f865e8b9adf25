// Editing runs from the panel: a toolbar for the selected runs (tag, untag, star, unstar, delete with
// an undo) and in-place editing of a run's label and note. Each edit is a message to Python, which
// makes the same call a user would (nbtrack.tag, nbtrack.rename, ...) and answers with what changed.
import { h } from "./dom.js";

/** Ask Python for one edit: {action, runs, value}. */
export function sendEdit(model, action, runs, value = null) {
  model.send({ type: "edit", action, runs, value });
}

/**
 * The toolbar shown while runs are selected. `selection()` gives {runs, count}: the selected run ids,
 * or "selected" where the page holds only some of them (a paged panel: Python edits its whole selection).
 * Returns {el, update, answer}: update() after the selection changes, answer(msg) for Python's reply.
 */
export function editToolbar(model, selection) {
  const selected = () => selection().runs;
  const el = h("div", "nbt-edits");
  const tagInput = h("input", "nbt-tag-input");
  tagInput.type = "text";
  tagInput.placeholder = "tag";
  tagInput.setAttribute("aria-label", "tag for the selected runs");
  const button = (cls, text, onClick) => {
    const b = h("button", `nbt-button ${cls}`, text);
    b.addEventListener("click", onClick);
    return b;
  };
  const tags = () => tagInput.value.split(",").map((t) => t.trim()).filter(Boolean);
  const tagIt = (action) => () => { if (tags().length) { sendEdit(model, action, selected(), tags()); tagInput.value = ""; } };
  tagInput.addEventListener("keydown", (ev) => { if (ev.key === "Enter") tagIt("tag")(); });
  const message = h("span", "nbt-edit-message");
  const undo = button("nbt-undo", "Undo", () => {
    if (undo.dataset.runs) sendEdit(model, "restore", JSON.parse(undo.dataset.runs));
    undo.hidden = true;
  });
  undo.hidden = true;
  el.append(
    tagInput, button("nbt-tag", "Tag", tagIt("tag")), button("nbt-untag", "Untag", tagIt("untag")),
    button("nbt-star", "★ Star", () => sendEdit(model, "star", selected(), true)),
    button("nbt-unstar", "☆ Unstar", () => sendEdit(model, "star", selected(), false)),
    button("nbt-delete", "Delete", () => sendEdit(model, "delete", selected())),
    message, undo,
  );
  const update = () => {
    const n = selection().count;
    for (const b of el.querySelectorAll("input, .nbt-tag, .nbt-untag, .nbt-star, .nbt-unstar, .nbt-delete")) b.disabled = !n;
  };
  const answer = (msg) => {
    message.classList.toggle("nbt-error", !!msg.error);
    if (msg.error) { message.textContent = msg.error; return; }
    const runs = `${msg.count} run${msg.count === 1 ? "" : "s"}`;
    const done = { tag: "tagged", untag: "untagged", star: "starred", rename: "renamed", note: "noted",
      delete: "deleted", restore: "restored" }[msg.action] || msg.action;
    message.textContent = `${done} ${runs}`;
    undo.hidden = msg.action !== "delete" || !msg.count;
    undo.dataset.runs = JSON.stringify(msg.runs || []);
  };
  update();
  return { el, update, answer };
}

/**
 * Edit a cell's text in place: an input (or a textarea for a note) over the cell; Enter (Ctrl+Enter
 * in a textarea) saves, Escape or leaving the field cancels.
 */
export function editInPlace(cell, value, multiline, onSave) {
  const field = h(multiline ? "textarea" : "input", "nbt-edit-field");
  field.value = value ?? "";
  cell.replaceChildren(field);
  cell.classList.add("nbt-editing");
  field.focus();
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (save && field.value !== (value ?? "")) onSave(field.value);
    cell.classList.remove("nbt-editing");
    cell.textContent = value ?? "";
  };
  field.addEventListener("click", (ev) => ev.stopPropagation());
  field.addEventListener("keydown", (ev) => {
    ev.stopPropagation();   // keys typed here are text, not notebook shortcuts
    if (ev.key === "Escape") finish(false);
    else if (ev.key === "Enter" && (!multiline || ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); finish(true); }
  });
  field.addEventListener("blur", () => finish(false));
}
