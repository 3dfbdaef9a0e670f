// The mock list: search by method, host, path, name or file, the files that fail to load, and
// the mock on show marked.

import { api, describe } from "./api.js";
import { $, badge, li, listItem, say, span } from "./page.js";
import { currentMock } from "./state.js";

let open; // open(id): show that mock in the editor pane, from main.js
let searchTimer = null;

export function initMockList(needs) {
  ({ open } = needs);
  currentMock.subscribe(markSelected);
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshList, 200);
  });
}

export async function refreshList() {
  const q = $("search").value.trim();
  try {
    const { data } = await api("GET", `/api/mocks?q=${encodeURIComponent(q)}`);
    renderList(data);
  } catch (e) {
    say(describe(e), "error");
  }
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
        () => open(m.id),
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
  const current = currentMock.get();
  for (const b of document.querySelectorAll("#mock-list .item")) {
    const on = current && b.dataset.id === current.id;
    b.classList.toggle("selected", !!on);
    if (on) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}
