// The frame around the views: the theme, the tabs, the admin token dialog, the AI provider label.

import { api, onTokenNeeded, setToken } from "./api.js";
import { $ } from "./page.js";
import { theme } from "./state.js";

const THEME_KEY = "mockbox-theme";
const TABS = ["mocks", "traffic"];

let tabChanged; // tabChanged(name), from main.js

export function initShell(needs) {
  ({ tabChanged } = needs);
  onTokenNeeded(askToken);
  theme.subscribe(applyTheme);
  theme.set(initialTheme());
  $("theme").addEventListener("click", () => {
    const next = theme.get() === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    theme.set(next);
  });
  for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));
  $("tab-mocks").addEventListener("keydown", (e) => e.key === "ArrowRight" && ($("tab-traffic").focus(), selectTab("traffic")));
  $("tab-traffic").addEventListener("keydown", (e) => e.key === "ArrowLeft" && ($("tab-mocks").focus(), selectTab("mocks")));
  $("token-form").addEventListener("submit", () => setToken($("token").value));
}

function initialTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === "dark" || saved === "light") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyTheme(name) {
  document.documentElement.dataset.theme = name;
  $("theme").setAttribute("aria-pressed", String(name === "dark"));
  $("theme").textContent = name === "dark" ? "Light theme" : "Dark theme";
}

export function selectTab(name) {
  for (const tab of TABS) {
    const on = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(on));
    $(`tab-${tab}`).tabIndex = on ? 0 : -1;
    $(`pane-${tab}`).hidden = !on;
  }
  tabChanged(name);
}

function askToken() {
  const dialog = $("token-dialog");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve($("token").value || null), { once: true });
    dialog.showModal();
  });
}

export async function showProvider() {
  try {
    const { data } = await api("GET", "/api/ai/usage");
    $("ai-provider").textContent = data.provider ? `AI: ${data.provider}${data.model && data.model !== data.provider ? " / " + data.model : ""}` : "";
  } catch {}
}
