// The mock editor pane: one mock in the code editor with the server's problems, and what can be
// done to it: save (with conflicts), delete, duplicate, copy or download its body.

import { api, ApiError, describe } from "./api.js";
import { MockEditor } from "./editor.js";
import { copyBody, downloadBody } from "./mockbody.js";
import { $, li, say, showDetail } from "./page.js";
import { currentMock, theme } from "./state.js";

const NEW_MOCK = `name: new mock
request:
  method: GET
  host: api.example.com
  path: /hello/{name}
response:
  status: 200
  headers:
    Content-Type: application/json
  body:
    message: "Hello, {{ path.name }}!"
`;

let listChanged; // listChanged(): reload the mock list after a save or delete, from main.js
let editor = null;
let insertAt = null; // position for a new mock (a duplicate goes right after its original)
let parsed = null; // the last checked mock (JSON), for copy and download of the body
let dirty = false;
let extras = []; // YAML of new mocks an accepted improvement adds, saved after this one
let conflict = null; // the server's current version after a 412

export function initMockPane(needs) {
  ({ listChanged } = needs);
  editor = new MockEditor($("editor"), {
    check,
    onChange: () => setDirty(true),
    onSave: () => save(),
    labelledBy: "editor-label",
    theme: theme.get(),
  });
  theme.subscribe((name) => editor.setTheme(name));
  $("new-mock").addEventListener("click", () => {
    if (dirty && !confirmDiscard()) return;
    openMock({ yaml: NEW_MOCK, file: "mocks.yaml" });
    editor.focus();
  });
  $("save").addEventListener("click", () => save());
  $("duplicate").addEventListener("click", duplicate);
  $("delete").addEventListener("click", remove);
  $("copy-body").addEventListener("click", () => copyBody(parsed));
  $("download-body").addEventListener("click", () => downloadBody(parsed));
  $("conflict-load").addEventListener("click", () => {
    const theirs = conflict;
    if (theirs) openMock({ yaml: theirs.yaml, saved: theirs, title: theirs.mock?.name || theirs.id });
    else showDetail("empty");
    hideConflict();
    listChanged();
  });
  $("conflict-overwrite").addEventListener("click", () => save({ overwrite: true }));
  document.addEventListener("keydown", (e) => {
    // The code editor handles its own Ctrl+S (and marks the event handled).
    if ((e.ctrlKey || e.metaKey) && e.key === "s" && !e.defaultPrevented && !$("mock-view").hidden) {
      e.preventDefault();
      save();
    }
  });
  window.addEventListener("beforeunload", (e) => {
    if (dirty && !$("mock-view").hidden) e.preventDefault();
  });
}

async function check(text) {
  if (!text.trim()) return [];
  try {
    const { data } = await api("POST", "/api/mocks/validate", { yaml: text, file: targetFile() });
    if (data.mock) parsed = data.mock;
    renderProblems(data.problems);
    return data.problems;
  } catch (e) {
    return [];
  }
}

function renderProblems(problems) {
  const list = $("problems");
  list.replaceChildren();
  if (!problems.length) {
    list.append(li("No problems", "ok"));
    return;
  }
  for (const p of problems) list.append(li(`Line ${p.line}: ${p.message}`, "problem"));
}

function targetFile() {
  const current = currentMock.get();
  return current ? current.file : $("mock-file").value.trim() || "draft.yaml";
}

function setDirty(value) {
  dirty = value;
  $("dirty").hidden = !value;
}

function setNote(id, text) {
  $(id).hidden = !text;
  $(id).textContent = text;
}

/** Show a mock in the editor. `saved`: {id, file, index, line, etag} or null for a new mock. */
export function openMock({ yaml, saved = null, file = "", title = "", explanation = "", insertAt: at = null }) {
  currentMock.set(saved);
  insertAt = at;
  extras = [];
  parsed = null;
  hideConflict();
  showDetail("mock");
  $("new-file-row").hidden = !!saved;
  if (!saved) $("mock-file").value = file || "mocks.yaml";
  $("mock-title").textContent = title || (saved ? saved.id : "New mock");
  $("mock-meta").textContent = saved ? `${saved.file}, line ${saved.line} · mock ${saved.index}` : "Not saved yet";
  $("delete").disabled = !saved;
  setNote("explanation", explanation);
  setNote("extras", "");
  editor.text = yaml; // the linter checks it at once
  setDirty(!saved);
}

/** Open a saved mock by id, after asking whether to drop unsaved edits. */
export async function loadMock(id) {
  if (dirty && !confirmDiscard()) return;
  try {
    const { data } = await api("GET", `/api/mocks/${encodePath(id)}`);
    openMock({ yaml: data.yaml, saved: data, title: data.mock?.name || data.id });
    parsed = data.mock;
  } catch (e) {
    say(describe(e), "error");
  }
}

/** The text in the editor and the file it is saved into, for the AI to improve. */
export function draft() {
  return { yaml: editor.text, file: targetFile() };
}

/** An accepted AI proposal: its first mock replaces the text, the others are saved after it. */
export function takeProposal({ yaml: [first, ...more], original_yaml }, explanation) {
  if (first !== original_yaml) editor.text = first; // else keep the text and its comments
  extras = [...extras, ...more];
  setNote("explanation", explanation);
  setNote("extras", extras.length ? `${extras.length} new mock(s) will be added after this one when you save.` : "");
  setDirty(true);
}

function confirmDiscard() {
  return window.confirm("Discard your unsaved changes?");
}

function encodePath(id) {
  return id.split("/").map(encodeURIComponent).join("/");
}

async function save({ overwrite = false } = {}) {
  const yaml = editor.text;
  const current = currentMock.get();
  try {
    let saved;
    if (current) {
      const etag = overwrite && conflict ? conflict.etag : current.etag;
      ({ data: saved } = await api("PUT", `/api/mocks/${encodePath(current.id)}`, { yaml }, { "If-Match": etag }));
    } else {
      const file = $("mock-file").value.trim();
      if (!file) {
        say("Choose the file to save the new mock into.", "error");
        $("mock-file").focus();
        return;
      }
      const body = { file, yaml };
      if (insertAt !== null) body.index = insertAt;
      ({ data: saved } = await api("POST", "/api/mocks", body));
    }
    const added = extras;
    for (const [k, text] of added.entries()) {
      await api("POST", "/api/mocks", { file: saved.file, yaml: text, index: saved.index + 1 + k });
    }
    openMock({ yaml: saved.yaml, saved, title: saved.mock?.name || saved.id });
    parsed = saved.mock;
    say(added.length ? `Saved, with ${added.length} new mock(s) after it.` : "Saved. The proxy serves it now.");
    await listChanged();
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) showConflict(e.data);
    else if (e instanceof ApiError && e.data.problems) {
      renderProblems(e.data.problems);
      editor.showProblems(e.data.problems);
      say(`Not saved: ${e.message}`, "error");
    } else say(`Not saved. ${describe(e)}`, "error");
  }
}

function showConflict(data) {
  conflict = data.current;
  $("conflict-message").textContent = data.message;
  $("conflict").hidden = false;
  $("conflict-overwrite").hidden = !data.current;
  say("Not saved: someone else changed this mock.", "error");
}

function hideConflict() {
  conflict = null;
  $("conflict").hidden = true;
}

async function remove() {
  const current = currentMock.get();
  if (!current) return;
  $("delete-what").textContent = `${current.id} (${$("mock-title").textContent}) will be removed from ${current.file}.`;
  const dialog = $("delete-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "delete") return;
  try {
    await api("DELETE", `/api/mocks/${encodePath(current.id)}`, undefined, { "If-Match": current.etag });
    say(`Deleted ${current.id}.`);
    currentMock.set(null);
    dirty = false;
    showDetail("empty");
    await listChanged();
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) showConflict(e.data);
    else say(`Not deleted. ${describe(e)}`, "error");
  }
}

function duplicate() {
  const text = editor.text;
  const copy = /^name:\s*(.+)$/m.test(text)
    ? text.replace(/^name:\s*(['"]?)(.*?)\1\s*$/m, (_, q, name) => `name: ${q}${name} (copy)${q}`)
    : `name: copy\n${text}`;
  const from = currentMock.get();
  openMock({
    yaml: copy,
    file: from ? from.file : $("mock-file").value,
    title: "New mock (duplicate)",
    insertAt: from ? from.index + 1 : null,
  });
  say("Duplicated: edit it, then save.");
}
