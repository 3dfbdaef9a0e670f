// The YAML code editor (CodeMirror 6): highlighting, inline problems from the server's own
// checks (the mock JSON Schema and compiler), light and dark themes.

import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { EditorState, Compartment } from "@codemirror/state";
import { indentWithTab } from "@codemirror/commands";
import { yaml } from "@codemirror/lang-yaml";
import { forceLinting, linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { oneDark } from "@codemirror/theme-one-dark";

export const themes = {
  light: [EditorView.theme({}, { dark: false })],
  dark: [oneDark],
};

/** Diagnostics for CodeMirror from [{line, message}] (lines count from 1). */
export function diagnostics(doc, problems) {
  return problems.map((p) => {
    const line = doc.line(Math.min(Math.max(1, p.line || 1), doc.lines));
    return { from: line.from, to: Math.max(line.from, line.to), severity: "error", message: p.message };
  });
}

export class MockEditor {
  /**
   * parent: element; check(text) → Promise<problems[]>; onChange(); onSave();
   * labelledBy: id of the element that names the editor.
   */
  constructor(parent, { check, onChange, onSave, labelledBy, theme }) {
    this.theme = new Compartment();
    this.readOnly = new Compartment();
    this.silent = false;
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc: "",
        extensions: [
          basicSetup,
          keymap.of([
            { key: "Mod-s", preventDefault: true, run: () => (onSave(), true) },
            indentWithTab,
          ]),
          yaml(),
          lintGutter(),
          linter(async (view) => diagnostics(view.state.doc, await check(view.state.doc.toString())), {
            delay: 400,
          }),
          this.theme.of(themes[theme] || themes.light),
          this.readOnly.of([]),
          EditorView.contentAttributes.of({ "aria-labelledby": labelledBy, "aria-multiline": "true" }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged && !this.silent) onChange();
          }),
        ],
      }),
    });
  }

  get text() {
    return this.view.state.doc.toString();
  }

  /** Replace the whole text (loading a mock) without counting it as the user's edit. */
  set text(value) {
    this.silent = true;
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: value } });
    this.silent = false;
    forceLinting(this.view);
  }

  showProblems(problems) {
    this.view.dispatch(setDiagnostics(this.view.state, diagnostics(this.view.state.doc, problems)));
  }

  setTheme(name) {
    this.view.dispatch({ effects: this.theme.reconfigure(themes[name] || themes.light) });
  }

  focus() {
    this.view.focus();
  }
}
