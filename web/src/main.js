// The MockBox editor page: the mock list, one mock in a code editor, recent traffic, and the
// AI controls (generate a draft, improve with a side-by-side diff). Everything goes through
// the admin API (/api/...); this file only wires the page to it.

import "./styles.css";
import { api, ApiError, describe, onTokenNeeded, setToken } from "./api.js";
import { MockEditor } from "./editor.js";
import { showDiff } from "./diff.js";

const $ = (id) => document.getElementById(id);

const state = {
  current: null, // {id, file, index, etag} of a saved mock; null for a new one
  insertAt: null, // position for a new mock (a duplicate goes right after its original)
  parsed: null, // the last checked mock (JSON), for copy and download of the body
  dirty: false,
  extras: [], // YAML of new mocks an accepted improvement adds, saved after this one
  conflict: null, // the server's current version after a 412
  proposal: null,
  diff: null,
  diffDocs: null,
  traffic: [],
  trafficSince: 0,
  trafficTimer: null,
  selectedTraffic: null,
};

// --- theme -------------------------------------------------------------------------------------

const THEME_KEY = "mockbox-theme";
function initialTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === "dark" || saved === "light") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}
let theme = initialTheme();

function applyTheme() {
  document.documentElement.dataset.theme = theme;
  $("theme").setAttribute("aria-pressed", String(theme === "dark"));
  $("theme").textContent = theme === "dark" ? "Light theme" : "Dark theme";
  editor?.setTheme(theme);
}

// --- status line -------------------------------------------------------------------------------

function say(message, kind = "info") {
  const el = $("status");
  el.textContent = message;
  el.dataset.kind = kind;
}

// --- the editor --------------------------------------------------------------------------------

let editor = null;

async function check(text) {
  if (!text.trim()) return [];
  try {
    const { data } = await api("POST", "/api/mocks/validate", { yaml: text, file: targetFile() });
    if (data.mock) state.parsed = data.mock;
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

function li(text, cls) {
  const item = document.createElement("li");
  item.textContent = text;
  if (cls) item.className = cls;
  return item;
}

function targetFile() {
  return state.current ? state.current.file : $("mock-file").value.trim() || "draft.yaml";
}

function setDirty(dirty) {
  state.dirty = dirty;
  $("dirty").hidden = !dirty;
}

function showView(name) {
  $("empty").hidden = name !== "empty";
  $("mock-view").hidden = name !== "mock";
  $("traffic-view").hidden = name !== "traffic";
}

/** Show a mock in the editor. `saved`: {id, file, index, etag} or null for a new mock. */
function openMock({ yaml, saved = null, file = "", title = "", explanation = "", insertAt = null }) {
  state.current = saved;
  state.insertAt = insertAt;
  state.extras = [];
  state.parsed = null;
  hideConflict();
  showView("mock");
  $("new-file-row").hidden = !!saved;
  if (!saved) $("mock-file").value = file || "mocks.yaml";
  $("mock-title").textContent = title || (saved ? saved.id : "New mock");
  $("mock-meta").textContent = saved ? `${saved.file}, line ${saved.line} · mock ${saved.index}` : "Not saved yet";
  $("delete").disabled = !saved;
  setNote("explanation", explanation);
  setNote("extras", "");
  editor.text = yaml; // the linter checks it at once
  setDirty(!saved);
  markSelected();
}

function setNote(id, text) {
  $(id).hidden = !text;
  $(id).textContent = text;
}

async function loadMock(id) {
  if (state.dirty && !confirmDiscard()) return;
  try {
    const { data } = await api("GET", `/api/mocks/${encodePath(id)}`);
    openMock({ yaml: data.yaml, saved: data, title: data.mock?.name || data.id });
    state.parsed = data.mock;
  } catch (e) {
    say(describe(e), "error");
  }
}

function confirmDiscard() {
  return window.confirm("Discard your unsaved changes?");
}

function encodePath(id) {
  return id.split("/").map(encodeURIComponent).join("/");
}

// --- saving, conflicts, deleting ---------------------------------------------------------------

async function save({ overwrite = false } = {}) {
  const yaml = editor.text;
  try {
    let saved;
    if (state.current) {
      const etag = overwrite && state.conflict ? state.conflict.etag : state.current.etag;
      ({ data: saved } = await api("PUT", `/api/mocks/${encodePath(state.current.id)}`, { yaml }, { "If-Match": etag }));
    } else {
      const file = $("mock-file").value.trim();
      if (!file) {
        say("Choose the file to save the new mock into.", "error");
        $("mock-file").focus();
        return;
      }
      const body = { file, yaml };
      if (state.insertAt !== null) body.index = state.insertAt;
      ({ data: saved } = await api("POST", "/api/mocks", body));
    }
    const extras = state.extras;
    for (const [k, text] of extras.entries()) {
      await api("POST", "/api/mocks", { file: saved.file, yaml: text, index: saved.index + 1 + k });
    }
    openMock({ yaml: saved.yaml, saved, title: saved.mock?.name || saved.id });
    state.parsed = saved.mock;
    say(extras.length ? `Saved, with ${extras.length} new mock(s) after it.` : "Saved. The proxy serves it now.");
    await refreshList();
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
  state.conflict = data.current;
  $("conflict-message").textContent = data.message;
  $("conflict").hidden = false;
  $("conflict-overwrite").hidden = !data.current;
  say("Not saved: someone else changed this mock.", "error");
}

function hideConflict() {
  state.conflict = null;
  $("conflict").hidden = true;
}

async function remove() {
  if (!state.current) return;
  $("delete-what").textContent = `${state.current.id} (${$("mock-title").textContent}) will be removed from ${state.current.file}.`;
  const dialog = $("delete-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "delete") return;
  try {
    await api("DELETE", `/api/mocks/${encodePath(state.current.id)}`, undefined, { "If-Match": state.current.etag });
    say(`Deleted ${state.current.id}.`);
    state.current = null;
    state.dirty = false;
    showView("empty");
    await refreshList();
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
  const from = state.current;
  openMock({
    yaml: copy,
    file: from ? from.file : $("mock-file").value,
    title: "New mock (duplicate)",
    insertAt: from ? from.index + 1 : null,
  });
  say("Duplicated: edit it, then save.");
}

// --- body: copy and download -------------------------------------------------------------------

function bodyText() {
  const body = state.parsed?.response?.body;
  if (body === undefined || body === null) return null;
  return typeof body === "string" ? body : JSON.stringify(body, null, 2);
}

async function copyBody() {
  const text = bodyText();
  if (text === null) return say("This mock has no body to copy.", "error");
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  say("Body copied.");
}

function downloadBody() {
  const text = bodyText();
  if (text === null) return say("This mock has no body to download.", "error");
  const json = typeof state.parsed.response.body !== "string";
  const name = (state.parsed.name || "body").replace(/[^\w.-]+/g, "-").replace(/^-|-$/g, "") || "body";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: json ? "application/json" : "text/plain" }));
  link.download = `${name}.${json ? "json" : "txt"}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// --- the mock list -----------------------------------------------------------------------------

let searchTimer = null;

async function refreshList() {
  const q = $("search").value.trim();
  try {
    const { data } = await api("GET", `/api/mocks?q=${encodeURIComponent(q)}`);
    renderList(data);
  } catch (e) {
    say(describe(e), "error");
  }
}

/** One entry of a list: a button made of `parts` that opens `id`. */
function listItem(id, parts, open) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "item";
  button.dataset.id = id;
  button.append(...parts);
  button.addEventListener("click", open);
  item.append(button);
  return item;
}

function renderList(data) {
  const list = $("mock-list");
  list.replaceChildren(
    ...data.mocks.map((m) =>
      listItem(
        m.id,
        [
          badge(m.methods.join(",").replace("*", "ANY"), "method"),
          span(m.path, "path"),
          span(`${m.name}${m.host ? " · " + m.host : ""}`, "sub"),
          span(`${m.file}:${m.line} · ${m.status}`, "sub"),
        ],
        () => loadMock(m.id),
      ),
    ),
  );
  const shown = data.mocks.length;
  $("list-count").textContent =
    data.total === shown ? `${shown} mock(s)` : `${shown} of ${data.total} mocks (refine the search)`;
  const problems = $("file-problems");
  problems.replaceChildren(...data.problems.map((p) => li(`${p.file}:${p.line}: ${p.message}`, "problem")));
  markSelected();
}

function markSelected() {
  for (const b of document.querySelectorAll("#mock-list .item")) {
    const on = state.current && b.dataset.id === state.current.id;
    b.classList.toggle("selected", !!on);
    if (on) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

function badge(text, cls) {
  const el = span(text, `badge ${cls} ${cls}-${text.toLowerCase().replace(/[^a-z0-9]/g, "")}`);
  return el;
}

function span(text, cls) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

// --- traffic -----------------------------------------------------------------------------------

async function refreshTraffic(reset = false) {
  if (reset) {
    state.traffic = [];
    state.trafficSince = 0;
  }
  const source = $("traffic-source").value;
  try {
    const { data } = await api(
      "GET",
      `/api/traffic?since=${state.trafficSince}&limit=200&source=${encodeURIComponent(source)}`,
    );
    if (data.traffic.length) {
      state.trafficSince = data.traffic[0].id;
      state.traffic = [...data.traffic, ...state.traffic].slice(0, data.size);
      renderTraffic();
    } else if (reset) renderTraffic();
  } catch (e) {
    say(describe(e), "error");
  }
}

function renderTraffic() {
  $("traffic-list").replaceChildren(
    ...state.traffic.map((t) => {
      const url = new URL(t.url);
      const time = new Date(t.time * 1000).toLocaleTimeString();
      return listItem(
        t.id,
        [
          badge(t.method, "method"),
          span(String(t.status ?? "—"), `status status-${String(t.status ?? 0)[0]}`),
          badge(t.source, "source"),
          span(url.pathname + url.search, "path"),
          span(`${url.host} · ${t.duration_ms} ms · ${time}`, "sub"),
        ],
        () => openTraffic(t.id),
      );
    }),
  );
  $("traffic-count").textContent = `${state.traffic.length} recent request(s)`;
}

async function openTraffic(id) {
  try {
    const { data } = await api("GET", `/api/traffic/${id}`);
    state.selectedTraffic = data;
    showView("traffic");
    $("traffic-title").textContent = `${data.method} ${data.url}`;
    $("traffic-meta").textContent =
      `${data.status ?? "no answer"} from ${data.source}${data.mock ? " (" + data.mock + ")" : ""} in ${data.duration_ms} ms` +
      (data.error ? ` · ${data.error}` : "");
    fill("req", data.request);
    fill("res", data.response);
    $("save-as-mock").disabled = !data.response || data.response.binary;
  } catch (e) {
    say(describe(e), "error");
  }
}

function fill(prefix, message) {
  $(`${prefix}-headers`).textContent = message ? message.headers.map(([k, v]) => `${k}: ${v}`).join("\n") : "";
  let body = message ? (message.binary ? `(binary, ${message.size} bytes)` : message.body || "") : "(no answer)";
  if (message && !message.binary) {
    try {
      body = JSON.stringify(JSON.parse(body), null, 2);
    } catch {}
  }
  if (message?.truncated) body += `\n… (${message.size} bytes in all)`;
  $(`${prefix}-body`).textContent = body;
}

async function saveAsMock() {
  const t = state.selectedTraffic;
  if (!t) return;
  try {
    const { data } = await api("GET", `/api/traffic/${t.id}/draft`);
    selectTab("mocks");
    openMock({ yaml: data.yaml, file: data.file, title: `New mock from ${t.method} ${new URL(t.url).pathname}` });
    say("Review the mock, choose its file, then save.");
  } catch (e) {
    say(describe(e), "error");
  }
}

function pollTraffic(on) {
  clearInterval(state.trafficTimer);
  state.trafficTimer = on ? setInterval(() => refreshTraffic(), 2000) : null;
}

// --- AI: generate ------------------------------------------------------------------------------

function openGenerate() {
  $("generate-error").hidden = true;
  $("generate-dialog").showModal();
  $("gen-url").focus();
}

/** Run an AI call from a dialog: its button says it is busy, its alert shows any error. */
async function fromDialog(event, form, button, busyLabel, errorId, work) {
  event.preventDefault();
  if (!$(form).reportValidity()) return;
  const run = $(button);
  const idle = run.textContent;
  run.disabled = true;
  run.textContent = busyLabel;
  $(errorId).hidden = true;
  try {
    await work();
  } catch (e) {
    $(errorId).textContent = describe(e);
    $(errorId).hidden = false;
  } finally {
    run.disabled = false;
    run.textContent = idle;
  }
}

function runGenerate(event) {
  return fromDialog(event, "generate-form", "generate-run", "Generating…", "generate-error", async () => {
    const { data } = await api("POST", "/api/ai/generate", {
      method: $("gen-method").value,
      url: $("gen-url").value.trim(),
      description: $("gen-description").value,
      complexity: $("gen-complexity").value,
      schema_hint: $("gen-hint").value,
    });
    $("generate-dialog").close();
    selectTab("mocks");
    openMock({
      yaml: data.yaml,
      file: data.file,
      title: data.mock.name,
      explanation: `${aiLabel(data)}: ${data.explanation}`,
    });
    say("Draft generated: review it, then save.");
  });
}

function aiLabel({ provider, model }) {
  return model && model !== provider ? `AI (${provider}, ${model})` : `AI (${provider})`;
}

// --- AI: improve -------------------------------------------------------------------------------

function openImprove() {
  state.proposal = null;
  state.diffDocs = null;
  drawDiff();
  $("proposal").hidden = true;
  $("improve-error").hidden = true;
  $("improve-accept").disabled = true;
  $("improve-dialog").showModal();
  $("improve-instruction").focus();
}

function runImprove(event) {
  return fromDialog(event, "improve-form", "improve-run", "Thinking…", "improve-error", async () => {
    const { data } = await api("POST", "/api/ai/improve", {
      yaml: editor.text,
      instruction: $("improve-instruction").value,
      file: targetFile(),
    });
    state.proposal = data;
    const [first, ...extras] = data.yaml;
    const proposed = [first, ...extras.map((y) => `# --- a new mock, saved after this one ---\n${y}`)].join("\n");
    $("proposal").hidden = false;
    $("proposal-explanation").textContent = `${aiLabel(data)}: ${data.explanation}`;
    state.diffDocs = [data.original_yaml, proposed];
    drawDiff();
    $("improve-accept").disabled = false;
  });
}

function drawDiff() {
  state.diff?.destroy();
  state.diff = state.diffDocs ? showDiff($("diff"), ...state.diffDocs, theme) : null;
}

function acceptImprovement() {
  const p = state.proposal;
  if (!p) return;
  const [first, ...extras] = p.yaml;
  if (first !== p.original_yaml) editor.text = first; // else keep the text and its comments
  state.extras = [...state.extras, ...extras];
  setNote("explanation", $("proposal-explanation").textContent);
  setNote(
    "extras",
    state.extras.length ? `${state.extras.length} new mock(s) will be added after this one when you save.` : "",
  );
  setDirty(true);
  closeImprove();
  say("Change accepted: review it, then save.");
}

function closeImprove() {
  state.diffDocs = null;
  drawDiff();
  $("improve-dialog").close();
}

// --- tabs, token, start ------------------------------------------------------------------------

function selectTab(name) {
  for (const tab of ["mocks", "traffic"]) {
    const on = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(on));
    $(`tab-${tab}`).tabIndex = on ? 0 : -1;
    $(`pane-${tab}`).hidden = !on;
  }
  pollTraffic(name === "traffic");
  if (name === "traffic") refreshTraffic(true);
}

function askToken() {
  const dialog = $("token-dialog");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve($("token").value || null), { once: true });
    dialog.showModal();
  });
}

async function showProvider() {
  try {
    const { data } = await api("GET", "/api/ai/usage");
    $("ai-provider").textContent = data.provider ? `AI: ${data.provider}${data.model && data.model !== data.provider ? " / " + data.model : ""}` : "";
  } catch {}
}

function wire() {
  $("theme").addEventListener("click", () => {
    theme = theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, theme);
    applyTheme();
    if (state.diff) drawDiff();
  });
  for (const tab of ["mocks", "traffic"]) $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));
  $("tab-mocks").addEventListener("keydown", (e) => e.key === "ArrowRight" && ($("tab-traffic").focus(), selectTab("traffic")));
  $("tab-traffic").addEventListener("keydown", (e) => e.key === "ArrowLeft" && ($("tab-mocks").focus(), selectTab("mocks")));
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshList, 200);
  });
  $("new-mock").addEventListener("click", () => {
    if (state.dirty && !confirmDiscard()) return;
    openMock({ yaml: NEW_MOCK, file: "mocks.yaml" });
    editor.focus();
  });
  $("generate").addEventListener("click", openGenerate);
  $("generate-form").addEventListener("submit", runGenerate);
  $("generate-cancel").addEventListener("click", () => $("generate-dialog").close());
  $("save").addEventListener("click", () => save());
  $("duplicate").addEventListener("click", duplicate);
  $("delete").addEventListener("click", remove);
  $("copy-body").addEventListener("click", copyBody);
  $("download-body").addEventListener("click", downloadBody);
  $("improve").addEventListener("click", openImprove);
  $("improve-form").addEventListener("submit", runImprove);
  $("improve-accept").addEventListener("click", acceptImprovement);
  $("improve-reject").addEventListener("click", () => {
    closeImprove();
    say("Proposal rejected; nothing changed.");
  });
  $("conflict-load").addEventListener("click", () => {
    const theirs = state.conflict;
    if (theirs) openMock({ yaml: theirs.yaml, saved: theirs, title: theirs.mock?.name || theirs.id });
    else showView("empty");
    hideConflict();
    refreshList();
  });
  $("conflict-overwrite").addEventListener("click", () => save({ overwrite: true }));
  $("traffic-refresh").addEventListener("click", () => refreshTraffic(true));
  $("traffic-source").addEventListener("change", () => refreshTraffic(true));
  $("save-as-mock").addEventListener("click", saveAsMock);
  $("token-form").addEventListener("submit", () => setToken($("token").value));
  document.addEventListener("keydown", (e) => {
    // The code editor handles its own Ctrl+S (and marks the event handled).
    if ((e.ctrlKey || e.metaKey) && e.key === "s" && !e.defaultPrevented && !$("mock-view").hidden) {
      e.preventDefault();
      save();
    }
  });
  window.addEventListener("beforeunload", (e) => {
    if (state.dirty && !$("mock-view").hidden) e.preventDefault();
  });
}

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

onTokenNeeded(askToken);
editor = new MockEditor($("editor"), {
  check,
  onChange: () => setDirty(true),
  onSave: () => save(),
  labelledBy: "editor-label",
  theme,
});
applyTheme();
wire();
refreshList();
showProvider();
document.body.dataset.ready = "yes";
