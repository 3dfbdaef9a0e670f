// The state more than one view needs; everything else is private to the view that uses it.
// Each field names its owner, the only module that sets it; the others read it or subscribe.

function field(value) {
  const listeners = [];
  return {
    get: () => value,
    set(next) {
      value = next;
      for (const listener of listeners) listener(next);
    },
    subscribe: (listener) => listeners.push(listener),
  };
}

/** "light" or "dark". Owner: shell.js (the theme button); the code editor and the diff follow it. */
export const theme = field(null);

/**
 * The saved mock on show, {id, file, index, line, etag}, or null for none or a new one.
 * Owner: mockpane.js; the mock list marks it.
 */
export const currentMock = field(null);
