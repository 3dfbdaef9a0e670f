// The response body of a checked mock (the JSON the server parsed), to the clipboard or a file.

import { say } from "./page.js";

function bodyText(mock) {
  const body = mock?.response?.body;
  if (body === undefined || body === null) return null;
  return typeof body === "string" ? body : JSON.stringify(body, null, 2);
}

export async function copyBody(mock) {
  const text = bodyText(mock);
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

export function downloadBody(mock) {
  const text = bodyText(mock);
  if (text === null) return say("This mock has no body to download.", "error");
  const json = typeof mock.response.body !== "string";
  const name = (mock.name || "body").replace(/[^\w.-]+/g, "-").replace(/^-|-$/g, "") || "body";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: json ? "application/json" : "text/plain" }));
  link.download = `${name}.${json ? "json" : "txt"}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
