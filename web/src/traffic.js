// The traffic view: recent requests through the proxy (polled while its tab is open), one
// exchange in detail, and Save as mock.

import { api, describe } from "./api.js";
import { $, badge, listItem, say, showDetail, span } from "./page.js";

let openDraft; // openDraft(draft): show a new mock in the editor pane, from main.js
let entries = []; // newest first, at most the server's ring size
let since = 0; // id of the newest entry: the next poll asks only for later ones
let timer = null;
let selected = null; // the exchange on show

export function initTraffic(needs) {
  ({ openDraft } = needs);
  $("traffic-refresh").addEventListener("click", () => refresh(true));
  $("traffic-source").addEventListener("change", () => refresh(true));
  $("save-as-mock").addEventListener("click", saveAsMock);
}

/** Poll while the traffic tab is open, starting afresh each time it opens. */
export function setTrafficActive(on) {
  clearInterval(timer);
  timer = on ? setInterval(() => refresh(), 2000) : null;
  if (on) refresh(true);
}

async function refresh(reset = false) {
  if (reset) {
    entries = [];
    since = 0;
  }
  const source = $("traffic-source").value;
  try {
    const { data } = await api("GET", `/api/traffic?since=${since}&limit=200&source=${encodeURIComponent(source)}`);
    if (data.traffic.length) {
      since = data.traffic[0].id;
      entries = [...data.traffic, ...entries].slice(0, data.size);
      render();
    } else if (reset) render();
  } catch (e) {
    say(describe(e), "error");
  }
}

function render() {
  $("traffic-list").replaceChildren(
    ...entries.map((t) => {
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
        () => openExchange(t.id),
      );
    }),
  );
  $("traffic-count").textContent = `${entries.length} recent request(s)`;
}

async function openExchange(id) {
  try {
    const { data } = await api("GET", `/api/traffic/${id}`);
    selected = data;
    showDetail("traffic");
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
  const t = selected;
  if (!t) return;
  try {
    const { data } = await api("GET", `/api/traffic/${t.id}/draft`);
    openDraft({ yaml: data.yaml, file: data.file, title: `New mock from ${t.method} ${new URL(t.url).pathname}` });
    say("Review the mock, choose its file, then save.");
  } catch (e) {
    say(describe(e), "error");
  }
}
