// Rep console: plain DOM code over /_sandbox/console-api (no build step).
"use strict";
const api = "/_sandbox/console-api";
let current = null;

async function call(method, path, body) {
  const response = await fetch(api + path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error((data && data.message) || response.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child ?? "");
  return node;
}

function showError(error) {
  document.getElementById("error").textContent = error ? String(error.message || error) : "";
}

async function loadLists() {
  const data = await call("GET", "/threads");
  const agent = document.getElementById("agent");
  if (!agent.options.length) {
    for (const a of data.agents) agent.append(el("option", { value: a.actorId }, a.name));
  }
  const threads = document.getElementById("threads");
  threads.replaceChildren(...data.results.map((t) => el("li", {
    class: "thread" + (t.id === current ? " selected" : ""), "data-thread-id": t.id,
    onclick: () => openThread(t.id),
  }, el("strong", {}, t.customer || "thread " + t.id), " ",
     el("span", { class: "badge " + t.status }, t.status),
     el("div", { class: "meta" }, t.preview))));
  const tickets = await call("GET", "/tickets");
  document.getElementById("tickets").replaceChildren(...tickets.results.map((t) => el("li", {
    class: "ticket", "data-ticket-id": t.id,
  }, el("strong", {}, "#" + t.id + " " + (t.subject || "")), " ",
     el("span", { class: "badge " + t.state }, t.stage || "?"), " ",
     t.state === "CLOSED" ? "" : el("button", {
       type: "button", class: "close-ticket",
       onclick: async (event) => {
         event.stopPropagation();
         await call("POST", "/tickets/" + t.id + "/close").catch(showError);
         await loadLists();
       },
     }, "Close ticket"))));
}

function describeStatus(message) {
  if (message.type !== "MESSAGE") return "";
  if (!message.status) return "delivery: pending";
  const failure = message.status.failureDetails;
  return "delivery: " + message.status.statusType +
    (failure && failure.errorMessage ? " (" + failure.errorMessage + ")" : "");
}

async function openThread(id) {
  current = id;
  const data = await call("GET", "/threads/" + id);
  document.getElementById("detail").hidden = false;
  document.getElementById("thread-title").textContent = "Thread " + id;
  const status = document.getElementById("thread-status");
  status.textContent = data.thread.status;
  status.className = "badge " + data.thread.status;
  const ticket = data.thread.threadAssociations && data.thread.threadAssociations.associatedTicketId;
  document.getElementById("thread-ticket").textContent = ticket ? "ticket #" + ticket : "";
  document.getElementById("messages").replaceChildren(...data.messages.map((m) => {
    const kind = m.type === "COMMENT" ? "COMMENT" : m.direction || m.type;
    const who = (m.senders && m.senders[0]) || {};
    const from = who.name || (who.deliveryIdentifier && who.deliveryIdentifier.value) || who.actorId;
    return el("li", { class: "message " + kind, "data-kind": kind, "data-message-id": m.id },
      el("div", { class: "meta" }, el("span", { class: "kind" }, kind), el("span", {}, from || ""),
         el("span", {}, m.createdAt), el("span", { class: "status" }, describeStatus(m))),
      el("div", { class: "text" }, m.text));
  }));
  await loadLists();
}

// What HubSpot's rich-text editor sends for a typed reply: `richText` is HTML (a <p> per
// paragraph, <br> per line break, <strong> for **bold**, <ul><li> for lines starting "- "),
// `text` the same words as plain text (paragraphs separated by a blank line, no markup).
function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
function inline(s) {
  return escapeHtml(s).replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>");
}
function composeReply(typed) {
  const paragraphs = typed.replace(/\r\n/g, "\n").trim().split(/\n\s*\n/);
  const html = paragraphs.map((para) => {
    const lines = para.split("\n");
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      return "<ul>" + lines.map((l) => "<li>" + inline(l.replace(/^\s*[-*] /, "")) + "</li>").join("") + "</ul>";
    }
    return "<p>" + lines.map(inline).join("<br>") + "</p>";
  });
  const text = paragraphs.map((p) => p.replace(/\*\*(.+?)\*\*/g, "$1")).join("\n\n");
  return { text, richText: html.join("") };
}

async function post(kind, textareaId) {
  const box = document.getElementById(textareaId);
  if (!current || !box.value.trim()) return;
  const actorId = document.getElementById("agent").value;
  try {
    const { text, richText } = composeReply(box.value);
    await call("POST", "/threads/" + current + "/messages", { kind, text, richText, actorId });
    box.value = "";
    showError(null);
    await openThread(current);
  } catch (error) { showError(error); }
}

document.getElementById("reply-form").addEventListener("submit", (e) => {
  e.preventDefault(); post("reply", "reply-text");
});
document.getElementById("comment-form").addEventListener("submit", (e) => {
  e.preventDefault(); post("comment", "comment-text");
});
document.getElementById("close-thread").addEventListener("click", async () => {
  await call("POST", "/threads/" + current + "/status", { status: "CLOSED" }).catch(showError);
  await openThread(current);
});
document.getElementById("refresh").addEventListener("click", () =>
  (current ? openThread(current) : loadLists()).catch(showError));
loadLists().catch(showError);
