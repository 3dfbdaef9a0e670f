// Small helpers every view uses: elements by id, the status line, which detail view shows,
// and the entries of the mock and traffic lists.

export const $ = (id) => document.getElementById(id);

export function say(message, kind = "info") {
  const el = $("status");
  el.textContent = message;
  el.dataset.kind = kind;
}

/** Show one detail view: "empty", "mock" or "traffic". */
export function showDetail(name) {
  $("empty").hidden = name !== "empty";
  $("mock-view").hidden = name !== "mock";
  $("traffic-view").hidden = name !== "traffic";
}

export function li(text, cls) {
  const item = document.createElement("li");
  item.textContent = text;
  if (cls) item.className = cls;
  return item;
}

export function span(text, cls) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

export function badge(text, cls) {
  return span(text, `badge ${cls} ${cls}-${text.toLowerCase().replace(/[^a-z0-9]/g, "")}`);
}

/** One entry of a list: a button made of `parts` that opens `id`. */
export function listItem(id, parts, open) {
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
