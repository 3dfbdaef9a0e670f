// The MockBox editor page: the mock list, one mock in a code editor, recent traffic, and the
// AI controls. Each view is its own module and never imports another; this file builds them
// and passes each what it needs from the others. Shared state: state.js.

import "./styles.css";
import { initAi } from "./ai.js";
import { initMockList, refreshList } from "./mocklist.js";
import { draft, initMockPane, loadMock, openMock, takeProposal } from "./mockpane.js";
import { initShell, selectTab, showProvider } from "./shell.js";
import { initTraffic, setTrafficActive } from "./traffic.js";

/** Show a new mock from the traffic or the AI in the editor, on the mocks tab. */
function openDraft(mock) {
  selectTab("mocks");
  openMock(mock);
}

initShell({ tabChanged: (name) => setTrafficActive(name === "traffic") });
initMockPane({ listChanged: refreshList });
initMockList({ open: loadMock });
initTraffic({ openDraft });
initAi({ openDraft, draft, takeProposal });
refreshList();
showProvider();
document.body.dataset.ready = "yes";
