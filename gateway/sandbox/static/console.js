// Rep console: plain DOM code over /_sandbox/console-api (no build step).
// It polls every POLL_MS, so new mail, replies and status changes show up by themselves.
"use strict";
const api = "/_sandbox/console-api";
const POLL_MS = 2000;
let current = null;          // the open thread's id
let shown = { lists: "", thread: "" };  // what is on screen, to redraw only on change
let integration = { appId: null };

class NeedsToken extends Error {}

async function call(method, path, body) {
  const headers = body ? { "Content-Type": "application/json" } : {};
  const token = sessionStorage.getItem("sandbox-token");
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(api + path, {
    method, headers, body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) {
    sessionStorage.removeItem("sandbox-token");
    throw new NeedsToken("the sandbox's admin token is needed");
  }
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error((data && data.message) || response.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child ?? "");
  return node;
}

const $ = (id) => document.getElementById(id);

function showError(error) {
  if (error instanceof NeedsToken) {
    $("token-form").hidden = false;
    $("main").hidden = true;
    $("error").textContent = "";
    return;
  }
  $("error").textContent = error ? String(error.message || error) : "";
}

// --- times: "just now", "5 min ago", "today 14:03", "yesterday 09:12", "3 Nov 14:03" -----
function clock(d) {
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
function human(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const seconds = (Date.now() - d.getTime()) / 1000;
  if (seconds < 45) return "just now";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  const today = new Date(); today.setHours(0, 0, 0, 0);
  const day = new Date(d); day.setHours(0, 0, 0, 0);
  const days = Math.round((today - day) / 86400000);
  if (days === 0) return "today " + clock(d);
  if (days === 1) return "yesterday " + clock(d);
  const date = { day: "numeric", month: "short" };
  if (d.getFullYear() !== today.getFullYear()) date.year = "numeric";
  return d.toLocaleDateString([], date) + (days < 300 ? " " + clock(d) : "");
}
function time(iso) {
  return el("time", { datetime: iso, title: iso ? new Date(iso).toLocaleString() : "" },
    human(iso));
}

// --- who wrote a message --------------------------------------------------------------
function author(m) {
  const who = (m.senders && m.senders[0]) || {};
  const email = who.deliveryIdentifier && who.deliveryIdentifier.value;
  if (m.direction === "INCOMING") {  // the integration publishes it; the customer wrote it
    const name = who.name && who.name !== email ? who.name + " <" + email + ">" : email;
    return { kind: "customer", name: name || "customer" };
  }
  const byApp = (m.client && m.client.clientType === "INTEGRATION")
    || String(m.createdBy || "").startsWith("I-");
  if (byApp) {  // the gateway's comments and the assistant's replies it published
    return { kind: "integration", name: "Integration (app " + (integration.appId || "?") + ")" };
  }
  return { kind: "agent", name: who.name || who.actorId || m.createdBy || "" };
}

// --- lists ----------------------------------------------------------------------------
function threadItem(t) {
  const who = t.customerName ? t.customerName + " · " + t.customer : (t.customer || "");
  return el("li", {
    class: "thread" + (t.id === current ? " selected" : ""), "data-thread-id": t.id,
    tabindex: "0", onclick: () => openThread(t.id),
    onkeydown: (e) => { if (e.key === "Enter") openThread(t.id); },
  },
  el("div", { class: "row" }, el("span", { class: "subject" }, t.subject), time(t.lastActivity)),
  el("div", { class: "row" }, el("span", { class: "who" }, who),
    el("span", { class: "badge " + t.status }, t.status)),
  el("div", { class: "preview-line" }, t.preview));
}

function ticketItem(t) {
  return el("li", { class: "ticket", "data-ticket-id": t.id },
    el("div", { class: "row" }, el("strong", { class: "subject" }, "#" + t.id + " " + (t.subject || "")),
      el("span", { class: "badge " + (t.state || "") }, t.stage || "?")),
    t.state === "CLOSED" ? "" : el("button", {
      type: "button", class: "close-ticket",
      onclick: (event) => { event.stopPropagation(); closeTicket(t.id); },
    }, "Close ticket"));
}

async function loadLists() {
  const data = await call("GET", "/threads");
  const tickets = await call("GET", "/tickets");
  integration = data.integration || integration;
  const agent = $("agent");
  if (!agent.options.length) {
    for (const a of data.agents) agent.append(el("option", { value: a.actorId }, a.name));
  }
  // redraw when something changed, and every minute for the relative times
  const key = JSON.stringify([data.results, tickets.results, current, Math.floor(Date.now() / 60000)]);
  if (key === shown.lists) return;
  shown.lists = key;
  $("threads").replaceChildren(...data.results.map(threadItem));
  $("thread-count").textContent = data.results.length ? "(" + data.results.length + ")" : "";
  $("no-threads").hidden = data.results.length > 0;
  $("tickets").replaceChildren(...tickets.results.map(ticketItem));
}

// --- one thread -----------------------------------------------------------------------
const ALLOWED = new Set(["P", "BR", "STRONG", "B", "EM", "I", "U", "UL", "OL", "LI", "A",
  "BLOCKQUOTE", "DIV", "SPAN"]);

// A message's richText as safe DOM: only the tags above, only http(s)/mailto links.
function safeRich(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const copy = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.textContent);
    if (node.nodeType !== Node.ELEMENT_NODE) return document.createTextNode("");
    const children = [...node.childNodes].map(copy);
    if (!ALLOWED.has(node.tagName)) {
      const frag = document.createDocumentFragment(); frag.append(...children); return frag;
    }
    const out = document.createElement(node.tagName);
    const href = node.getAttribute("href") || "";
    if (node.tagName === "A" && /^(https?:|mailto:)/i.test(href)) {
      out.setAttribute("href", href); out.setAttribute("rel", "noopener noreferrer");
      out.setAttribute("target", "_blank");
    }
    out.append(...children);
    return out;
  };
  const frag = document.createDocumentFragment();
  frag.append(...[...doc.body.childNodes].map(copy));
  return frag;
}

function messageItem(m) {
  const kind = m.type === "COMMENT" ? "COMMENT" : m.direction || m.type;
  const by = author(m);
  const rich = m.richText && /<[a-z]/i.test(m.richText) && m.richText !== m.text;
  const body = rich ? el("div", { class: "text rich" }, safeRich(m.richText))
    : el("div", { class: "text" }, m.text);
  return el("li", {
    class: "message " + kind + (by.kind === "integration" ? " integration" : ""),
    "data-kind": kind, "data-author": by.kind, "data-message-id": m.id,
  },
  el("div", { class: "meta" }, el("span", { class: "author" }, by.name),
    el("span", { class: "tag kind" }, kind === "COMMENT" ? "internal comment" : by.kind),
    time(m.createdAt), el("span", { class: "status" }, describeStatus(m))),
  body);
}

function describeStatus(message) {
  if (message.type !== "MESSAGE" || message.direction !== "OUTGOING") return "";
  if (!message.status) return "delivery: pending";
  const failure = message.status.failureDetails;
  return "delivery: " + message.status.statusType +
    (failure && failure.errorMessage ? " (" + failure.errorMessage + ")" : "");
}

function showTicket(ticket) {
  const card = $("ticket-detail");
  if (!ticket) { card.hidden = true; return; }
  $("ticket-title").textContent = "Ticket #" + ticket.id + " · " + (ticket.subject || "");
  $("ticket-stage").textContent = ticket.stage || "?";
  $("ticket-stage").className = "badge " + (ticket.state || "");
  $("ticket-priority").textContent = ticket.priority ? "priority " + ticket.priority : "";
  $("ticket-content").textContent = ticket.content || "";
  $("close-ticket").hidden = ticket.state === "CLOSED";
  $("close-ticket").dataset.ticketId = ticket.id;
}

async function loadThread() {
  if (!current) return;
  const data = await call("GET", "/threads/" + current);
  const key = JSON.stringify([data, Math.floor(Date.now() / 60000)]);
  if (key === shown.thread) return;
  shown.thread = key;
  const t = data.thread;
  $("detail").hidden = false;
  $("main").classList.add("reading");
  $("thread-title").textContent = t.subject;
  $("thread-customer").textContent = t.customerName ? t.customerName + " <" + t.customer + ">"
    : (t.customer || "");
  $("thread-status").textContent = t.status;
  $("thread-status").className = "badge " + t.status;
  $("close-thread").hidden = t.status === "CLOSED";
  const link = $("thread-ticket");
  link.hidden = !t.ticket;
  if (t.ticket) {
    link.textContent = "Ticket #" + t.ticket.id + " · " + (t.ticket.stage || "?");
    link.dataset.ticketId = t.ticket.id;
  }
  if (!$("ticket-detail").hidden) showTicket(t.ticket);
  $("messages").replaceChildren(...data.messages
    .filter((m) => m.type === "MESSAGE" || m.type === "COMMENT").map(messageItem));
}

async function openThread(id) {
  if (id !== current) {
    current = id;
    shown.thread = "";
    $("ticket-detail").hidden = true;
  }
  try {
    await loadThread();
    await loadLists();
    showError(null);
  } catch (error) { showError(error); }
}

async function refresh() {
  await loadLists();
  await loadThread();
}

async function poll() {
  try {
    if ($("token-form").hidden) {
      await refresh();
      $("live").classList.remove("stale");
    }
  } catch (error) {
    $("live").classList.add("stale");
    showError(error);
  }
  setTimeout(poll, POLL_MS);
}

// --- the reply: what HubSpot's editor sends ---------------------------------------------
// `richText` is HTML (a <p> per paragraph, <br> per line break, <strong> for **bold**,
// <a href> for [text](https://…), <ul>/<ol> for lines starting "- " or "1. "), `text` the
// same words as plain text (paragraphs separated by a blank line, links as "text (url)").
function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
const LINK = /\[([^\]]+)\]\(((?:https?:\/\/|mailto:)[^)\s]+)\)/g;
function inline(s) {
  const parts = [];
  let last = 0;
  for (const m of s.matchAll(LINK)) {
    parts.push(escapeHtml(s.slice(last, m.index)));
    parts.push('<a href="' + escapeHtml(m[2]) + '">' + escapeHtml(m[1]) + "</a>");
    last = m.index + m[0].length;
  }
  parts.push(escapeHtml(s.slice(last)));
  return parts.join("").replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>");
}
function plain(s) {
  return s.replace(LINK, (_, label, url) => (label === url ? url : label + " (" + url + ")"))
    .replace(/\*\*(.+?)\*\*/g, "$1");
}
const BULLET = /^\s*[-*] /;
const NUMBER = /^\s*\d+[.)] /;
function composeReply(typed) {
  const paragraphs = typed.replace(/\r\n/g, "\n").trim().split(/\n\s*\n/);
  const html = paragraphs.map((para) => {
    const lines = para.split("\n");
    for (const [re, tag] of [[BULLET, "ul"], [NUMBER, "ol"]]) {
      if (lines.every((l) => re.test(l))) {
        return "<" + tag + ">" + lines.map((l) => "<li>" + inline(l.replace(re, "")) + "</li>").join("") + "</" + tag + ">";
      }
    }
    return "<p>" + lines.map(inline).join("<br>") + "</p>";
  });
  return { text: paragraphs.map(plain).join("\n\n"), richText: html.join("") };
}

function format(kind) {
  const box = $("reply-text");
  const [start, end] = [box.selectionStart, box.selectionEnd];
  const picked = box.value.slice(start, end);
  let insert;
  let select = null;  // what to select afterwards, relative to `start`
  if (kind === "bold") {
    insert = "**" + (picked || "bold text") + "**";
    select = [2, insert.length - 2];
  } else if (kind === "link") {
    const label = picked || "link text";
    insert = "[" + label + "](https://)";
    select = [label.length + 3, insert.length - 1];
  } else {
    const lines = (picked || "item").split("\n");
    insert = lines.map((l, i) => (kind === "bullets" ? "- " : (i + 1) + ". ") + l).join("\n");
    const before = box.value.slice(0, start);
    if (before && !before.endsWith("\n\n")) insert = (before.endsWith("\n") ? "\n" : "\n\n") + insert;
  }
  box.setRangeText(insert, start, end, "end");
  if (select) box.setSelectionRange(start + select[0], start + select[1]);
  box.focus();
  preview();
}

function preview() {
  const box = $("reply-text");
  const target = $("reply-preview");
  target.hidden = !box.value.trim();
  target.replaceChildren(box.value.trim() ? safeRich(composeReply(box.value).richText) : "");
}

async function post(kind, textareaId) {
  const box = $(textareaId);
  if (!current || !box.value.trim()) return;
  const actorId = $("agent").value;
  try {
    const { text, richText } = composeReply(box.value);
    await call("POST", "/threads/" + current + "/messages", { kind, text, richText, actorId });
    box.value = "";
    preview();
    showError(null);
    await refresh();
  } catch (error) { showError(error); }
}

async function closeTicket(id) {
  try {
    await call("POST", "/tickets/" + id + "/close");
    await refresh();
  } catch (error) { showError(error); }
}

$("reply-form").addEventListener("submit", (e) => { e.preventDefault(); post("reply", "reply-text"); });
$("comment-form").addEventListener("submit", (e) => { e.preventDefault(); post("comment", "comment-text"); });
$("reply-text").addEventListener("input", preview);
for (const button of document.querySelectorAll("[data-format]")) {
  button.addEventListener("click", () => format(button.dataset.format));
}
$("close-thread").addEventListener("click", async () => {
  try {
    await call("POST", "/threads/" + current + "/status", { status: "CLOSED" });
    await refresh();
  } catch (error) { showError(error); }
});
$("thread-ticket").addEventListener("click", async (e) => {
  e.preventDefault();
  const card = $("ticket-detail");
  card.hidden = !card.hidden;
  if (!card.hidden) {
    const data = await call("GET", "/threads/" + current).catch(showError);
    if (data) showTicket(data.thread.ticket);
  }
});
$("close-ticket").addEventListener("click", () => closeTicket($("close-ticket").dataset.ticketId));
$("back").addEventListener("click", () => {
  current = null;
  shown = { lists: "", thread: "" };
  $("main").classList.remove("reading");
  $("detail").hidden = true;
  loadLists().catch(showError);
});
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("sandbox-token", $("token").value.trim());
  $("token-form").hidden = true;
  $("main").hidden = false;
  shown = { lists: "", thread: "" };
  refresh().catch(showError);
});
poll();
