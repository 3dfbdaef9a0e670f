// The side-by-side view of a proposed change (CodeMirror's merge view), read-only.

import { MergeView } from "@codemirror/merge";
import { EditorView, lineNumbers } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { syntaxHighlighting, defaultHighlightStyle } from "@codemirror/language";
import { themes } from "./editor.js";

export function showDiff(parent, current, proposed, theme) {
  const side = (label) => [
    lineNumbers(),
    yaml(),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    EditorState.readOnly.of(true),
    EditorView.editable.of(false),
    EditorView.contentAttributes.of({ "aria-label": label }),
    themes[theme] || themes.light,
  ];
  parent.replaceChildren();
  return new MergeView({
    a: { doc: current, extensions: side("Current mock") },
    b: { doc: proposed, extensions: side("Proposed mock") },
    parent,
    gutter: true,
    highlightChanges: true,
  });
}
