// The AI dialogs: Generate drafts a new mock; Improve proposes a change to the mock on show,
// shown side by side (diff.js) to accept or reject.

import { api, describe } from "./api.js";
import { showDiff } from "./diff.js";
import { $, say } from "./page.js";
import { theme } from "./state.js";

// From main.js: openDraft(mock) shows a new mock in the editor pane; draft() gives the mock on
// show ({yaml, file}); takeProposal(proposal, explanation) puts an accepted one into the pane.
let openDraft, draft, takeProposal;
let proposal = null; // the last answer of /api/ai/improve
let diffDocs = null; // [current, proposed] while the diff shows
let diff = null; // its merge view

export function initAi(needs) {
  ({ openDraft, draft, takeProposal } = needs);
  theme.subscribe(() => diff && drawDiff());
  $("generate").addEventListener("click", openGenerate);
  $("generate-form").addEventListener("submit", runGenerate);
  $("generate-cancel").addEventListener("click", () => $("generate-dialog").close());
  $("improve").addEventListener("click", openImprove);
  $("improve-form").addEventListener("submit", runImprove);
  $("improve-accept").addEventListener("click", acceptImprovement);
  $("improve-reject").addEventListener("click", () => {
    closeImprove();
    say("Proposal rejected; nothing changed.");
  });
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

function aiLabel({ provider, model }) {
  return model && model !== provider ? `AI (${provider}, ${model})` : `AI (${provider})`;
}

// --- generate ----------------------------------------------------------------------------------

function openGenerate() {
  $("generate-error").hidden = true;
  $("generate-dialog").showModal();
  $("gen-url").focus();
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
    openDraft({
      yaml: data.yaml,
      file: data.file,
      title: data.mock.name,
      explanation: `${aiLabel(data)}: ${data.explanation}`,
    });
    say("Draft generated: review it, then save.");
  });
}

// --- improve -----------------------------------------------------------------------------------

function openImprove() {
  proposal = null;
  diffDocs = null;
  drawDiff();
  $("proposal").hidden = true;
  $("improve-error").hidden = true;
  $("improve-accept").disabled = true;
  $("improve-dialog").showModal();
  $("improve-instruction").focus();
}

function runImprove(event) {
  return fromDialog(event, "improve-form", "improve-run", "Thinking…", "improve-error", async () => {
    const { yaml, file } = draft();
    const { data } = await api("POST", "/api/ai/improve", {
      yaml,
      instruction: $("improve-instruction").value,
      file,
    });
    proposal = data;
    const [first, ...extras] = data.yaml;
    const proposed = [first, ...extras.map((y) => `# --- a new mock, saved after this one ---\n${y}`)].join("\n");
    $("proposal").hidden = false;
    $("proposal-explanation").textContent = `${aiLabel(data)}: ${data.explanation}`;
    diffDocs = [data.original_yaml, proposed];
    drawDiff();
    $("improve-accept").disabled = false;
  });
}

function drawDiff() {
  diff?.destroy();
  diff = diffDocs ? showDiff($("diff"), ...diffDocs, theme.get()) : null;
}

function acceptImprovement() {
  if (!proposal) return;
  takeProposal(proposal, $("proposal-explanation").textContent);
  closeImprove();
  say("Change accepted: review it, then save.");
}

function closeImprove() {
  diffDocs = null;
  drawDiff();
  $("improve-dialog").close();
}
