/* The card panel: every field of a card edited in place, one API call per edit, live without
 * losing work. Uses board.js's `window.Board` (api, toast) and hears its `board:message` events.
 *
 * The server renders the panel (templates/projects/_panel.html). When the card changes, the panel
 * is fetched again and merged part by part (elements with data-key): a part someone is typing in,
 * editing or confirming stays as it is, caret and all; if the server's value of such a part
 * (data-value) moved meanwhile, the part shows a conflict: "Ana changed the title to … · Use
 * theirs / Keep mine". A save answered 409 (the card changed first) is retried when the field
 * itself did not change, and otherwise offered back beside the current value. */
(function () {
  "use strict";

  const { api, toast } = window.Board;
  const config = JSON.parse(document.getElementById("board-config").textContent);
  const panel = document.getElementById("panel");
  const drafts = new Map();  // task id -> {element id: text typed and not saved}, across close and reopen
  let opener = null;  // what had focus when the panel opened: it gets it back on close
  let loadSeq = 0;

  const FIELD_WORDS = {
    title: "the title", description: "the description", priority: "the priority", due_date: "the due date",
    estimate_minutes: "the estimate", subtask: "this subtask", comment: "this comment", worklog: "this work log",
  };
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  /* ---- small helpers ---- */

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function root() { return panel.querySelector(".panel-inner[data-task]"); }
  function openTaskId() { return panel.hidden ? null : panel.dataset.task || null; }
  function taskUrl(suffix) { return `/api/tasks/${root().dataset.task}${suffix || ""}`; }
  function itemOf(node) { return node.closest("[data-key]"); }

  function ago(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return "";
    const seconds = (Date.now() - moment.getTime()) / 1000;
    if (seconds < 45) return "just now";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.round(seconds / 3600);
    if (hours < 24) return `${hours} h ago`;
    const today = new Date(); today.setHours(0, 0, 0, 0);
    const day = new Date(moment); day.setHours(0, 0, 0, 0);
    const days = Math.round((today - day) / 86400000);
    if (days <= 1) return "yesterday";
    if (days < 7) return `${days} days ago`;
    return `${moment.getDate()} ${MONTHS[moment.getMonth()]} ${moment.getFullYear()}`;
  }

  function refreshTimes(scope) {
    for (const time of (scope || panel).querySelectorAll("time[data-ago]")) {
      const text = ago(time.getAttribute("datetime"));
      if (text && time.textContent !== text) time.textContent = text;
      time.title = new Date(time.getAttribute("datetime")).toLocaleString();
    }
  }

  function minutesText(minutes) {
    if (!minutes) return "";
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    if (hours && rest) return `${hours} h ${rest} min`;
    return hours ? `${hours} h` : `${rest} min`;
  }

  /* "90", "1h 30m", "1 h 30 min", "1.5h", "45 min" -> minutes; "" -> null; anything else -> NaN. */
  function parseEstimate(text) {
    const value = text.trim().toLowerCase();
    if (!value) return null;
    if (/^\d+$/.test(value)) return Number(value);
    const match = value.match(/^(?:(\d+(?:[.,]\d+)?)\s*h(?:ours?|rs?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?|s)?)?)?$/);
    if (!match || (!match[1] && !match[2])) return NaN;
    return Math.round(parseFloat((match[1] || "0").replace(",", ".")) * 60) + Number(match[2] || 0);
  }

  /* Good news, seen and heard (board.js's toast is for errors). */
  function notice(text) {
    const box = h("div", { class: "toast toast-ok", role: "status" }, text);
    document.body.append(box);
    setTimeout(() => box.remove(), 3000);
  }

  function announce(text) {
    const box = panel.querySelector("[data-status]");
    if (box) { box.textContent = ""; setTimeout(() => { box.textContent = text; }, 30); }
  }

  /* The server's words for a refusal: its message, or the first field a validation error names. */
  function messageOf(error) {
    if (typeof error === "string") return error;
    if (error instanceof TypeError) return "The server could not be reached. Check your connection and try again.";
    const fields = error.details && error.details.fields;
    if (Array.isArray(fields) && fields.length && fields[0].msg) {
      const where = (fields[0].loc || []).filter((part) => !["body", "payload"].includes(part)).join(" ");
      return `${where ? `${where}: ` : ""}${fields[0].msg}`;
    }
    if (fields && typeof fields === "object" && !Array.isArray(fields)) {
      const [name, messages] = Object.entries(fields)[0] || [];
      if (name) return `${name}: ${[].concat(messages)[0]}`;
    }
    return error.message || "Something went wrong. Try again.";
  }

  function errorBoxFor(node) {
    for (let scope = node; scope && scope !== panel; scope = scope.parentElement) {
      const box = scope.querySelector(":scope > [data-error]");
      if (box) return box;
    }
    return null;
  }

  function showError(node, error) {
    const box = errorBoxFor(node);
    const message = messageOf(error);
    if (box) box.textContent = message; else toast(message);
    if (node.matches && node.matches("input, textarea, select")) node.setAttribute("aria-invalid", "true");
  }

  function clearError(node) {
    const box = errorBoxFor(node);
    if (box) box.textContent = "";
    if (node.removeAttribute) node.removeAttribute("aria-invalid");
  }

  /* ---- loading the panel ---- */

  async function fetchPanel(url, retried) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    // An expired access token sends a page to /login: renew it (api() does) and ask once more.
    if (response.redirected && new URL(response.url).pathname === "/login" && !retried) {
      await api("GET", "/api/auth/me").catch(() => null);
      return fetchPanel(url, true);
    }
    if (!response.ok) {
      const error = new Error(response.status === 404
        ? "This card is gone, or you may not see it."
        : `The card could not be loaded (${response.status} ${response.statusText}).`);
      error.status = response.status;
      throw error;
    }
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    const fresh = template.content.querySelector(".panel-inner");
    if (!fresh) throw new Error("The card could not be loaded. Reload the page.");
    return fresh;
  }

  function panelUrl(taskId) { return `/boards/${config.board}/tasks/${taskId}/`; }

  function shell(label, ...children) {
    return h("div", { class: "panel-inner", role: "dialog", "aria-label": label, tabindex: "-1" },
      h("header", { class: "panel-head" }, h("span", { class: "card-key" }, label),
        h("button", { type: "button", class: "icon-button", "data-close-panel": true, "aria-label": "Close" }, "×")),
      ...children);
  }

  async function openPanel(taskId, { focus = true } = {}) {
    const seq = ++loadSeq;
    const current = root();
    if (current && current.dataset.task !== String(taskId)) stashDrafts();
    if (panel.hidden) opener = document.activeElement;
    panel.hidden = false;
    panel.dataset.task = taskId;
    if (!current || current.dataset.task !== String(taskId)) {
      panel.replaceChildren(shell("Card", h("p", { class: "muted", role: "status" }, "Loading the card…")));
    }
    try {
      const fresh = await fetchPanel(panelUrl(taskId));
      if (seq !== loadSeq) return;
      panel.replaceChildren(fresh);
      enhance(fresh);
      restoreDrafts(fresh);
      if (focus && !fresh.contains(document.activeElement)) fresh.focus();
    } catch (error) {
      if (seq !== loadSeq) return;
      const retry = h("button", { type: "button", class: "button small", "data-retry": taskId }, "Try again");
      panel.replaceChildren(shell("Card", h("p", { class: "alert", role: "alert" }, messageOf(error)), retry));
      retry.focus();
    }
  }

  async function openArchived() {
    const seq = ++loadSeq;
    stashDrafts();
    if (panel.hidden) opener = document.activeElement;
    panel.hidden = false;
    delete panel.dataset.task;
    try {
      const fresh = await fetchPanel(`/boards/${config.board}/archived/`);
      if (seq !== loadSeq) return;
      panel.replaceChildren(fresh);
      fresh.focus();
    } catch (error) {
      if (seq !== loadSeq) return;
      panel.replaceChildren(shell("Archived cards", h("p", { class: "alert", role: "alert" }, messageOf(error))));
    }
  }

  function closePanel() {
    const taskId = panel.dataset.task;
    stashDrafts();
    loadSeq += 1;
    panel.hidden = true;
    delete panel.dataset.task;
    panel.replaceChildren();
    const card = taskId && document.querySelector(`li.card[data-task="${CSS.escape(taskId)}"]`);
    const back = card || (opener && opener.isConnected ? opener : null);
    if (back) back.focus();
    opener = null;
  }

  /* What someone typed and did not save survives closing the panel (and a card switch). */
  function stashDrafts() {
    const current = root();
    if (!current) return;
    const typed = {};
    for (const input of current.querySelectorAll("input, textarea")) {
      if (input.id && isTextEntry(input) && input.value !== input.defaultValue) typed[input.id] = input.value;
    }
    if (Object.keys(typed).length) drafts.set(current.dataset.task, typed);
    else drafts.delete(current.dataset.task);
  }

  function restoreDrafts(fresh) {
    const typed = drafts.get(fresh.dataset.task);
    if (!typed) return;
    drafts.delete(fresh.dataset.task);
    for (const [id, value] of Object.entries(typed)) {
      const input = fresh.querySelector(`#${CSS.escape(id)}`);
      if (!input) continue;
      const editor = input.closest("[data-editor]");
      if (editor) enterEdit(itemOf(editor), { focus: false });
      input.value = value;
    }
  }

  /* ---- merging a fresh panel into the open one ---- */

  function isTextEntry(node) {
    if (!(node instanceof HTMLElement)) return false;
    if (node.tagName === "TEXTAREA") return true;
    if (node.tagName !== "INPUT") return false;
    return !["checkbox", "radio", "button", "submit", "reset", "file", "range", "color", "hidden"].includes(node.type);
  }

  /* A part is busy while someone types in it, edits it, confirms a deletion in it, or has a
   * conflict in it to resolve: then it is never replaced under them. */
  function isBusy(part) {
    const marks = ".editing, .confirming, .conflicted, .picking, details[open]";
    if (part.hasAttribute("data-keep") || part.matches(marks) || part.querySelector(marks)) return true;
    const active = document.activeElement;
    // (a focused file input: its chooser may be open, and a replaced input would drop the pick)
    if (active && part.contains(active) && (isTextEntry(active) || active.type === "file")) return true;
    for (const input of [part, ...part.querySelectorAll("input, textarea")]) {
      if (isTextEntry(input) && input.value !== input.defaultValue) return true;
      if (input.type === "file" && input.files && input.files.length) return true;
    }
    return false;
  }

  function keyOf(node, index) { return node.dataset.key || `${node.tagName}#${index}`; }

  function morphChildren(parent, freshParent) {
    const olds = [...parent.children];
    const byKey = new Map(olds.map((node, index) => [keyOf(node, index), node]));
    const kept = new Set();
    const plan = [...freshParent.children].map((fresh, index) => {
      const old = byKey.get(keyOf(fresh, index));
      byKey.delete(keyOf(fresh, index));
      if (old && isBusy(old)) { kept.add(old); return { node: old, fresh }; }
      return { node: fresh };
    });
    for (const old of byKey.values()) {  // gone from the server while someone was busy in it
      if (isBusy(old)) { kept.add(old); markGone(old); }
    }
    for (const old of olds) if (!kept.has(old)) old.remove();
    let previous = null;
    for (const step of plan) {
      if (step.fresh) morphBusy(step.node, step.fresh);
      else if (previous) previous.after(step.node);
      else parent.prepend(step.node);
      previous = step.node;
    }
  }

  function morphBusy(old, fresh) {
    if (old.hasAttribute("data-field")) { old._fresh = fresh; checkConflict(old, fresh); return; }
    morphChildren(old, fresh);
  }

  function currentValue(field) {
    const control = field.querySelector("[data-editor] input:not([type=hidden]), [data-editor] textarea, [data-input]");
    if (!control) return null;
    if (control.dataset.input === "estimate_minutes") {
      const minutes = parseEstimate(control.value);
      return minutes === null ? "" : String(minutes);
    }
    return control.value;
  }

  function checkConflict(field, fresh) {
    const theirs = fresh.dataset.value;
    if (field.dataset.value === theirs) { clearConflict(field); return; }
    const mine = currentValue(field);
    if (mine !== null && mine.trim() === theirs.trim()) {  // they made the very change being typed
      field.dataset.value = theirs;
      clearConflict(field);
      return;
    }
    showConflict(field, fresh);
  }

  function showConflict(field, fresh) {
    field.classList.add("conflicted");
    let box = field.querySelector(":scope > .conflict");
    if (!box) {
      box = h("div", { class: "conflict", role: "alert" });
      const error = field.querySelector(":scope > [data-error]");
      field.insertBefore(box, error);
    }
    const who = fresh.dataset.changedBy || "Someone";
    const what = FIELD_WORDS[field.dataset.field] || "this";
    const display = fresh.dataset.display || "";
    const long = display.length > 80 || display.includes("\n");
    box.replaceChildren(
      h("span", {}, `${who} changed ${what} to `, long ? "" : h("q", {}, display), long ? ":" : ""),
      long ? h("blockquote", { class: "theirs" }, display) : "",
      h("span", { class: "conflict-actions" },
        h("button", { type: "button", class: "button small", "data-action": "use-theirs" }, "Use theirs"),
        h("button", { type: "button", class: "button secondary small", "data-action": "keep-mine" }, "Keep mine")),
    );
  }

  function clearConflict(field) {
    field.classList.remove("conflicted");
    const box = field.querySelector(":scope > .conflict");
    if (box) box.remove();
  }

  function markGone(old) {
    old.classList.add("conflicted");
    let box = old.querySelector(":scope > .conflict");
    if (!box) { box = h("div", { class: "conflict", role: "alert" }); old.prepend(box); }
    box.replaceChildren(
      "Someone else deleted this. What you typed is still here: copy it if you need it. ",
      h("button", { type: "button", class: "button secondary small", "data-action": "dismiss-gone" }, "Dismiss"));
  }

  function focusToken() {
    const active = document.activeElement;
    if (!active || !panel.contains(active)) return null;
    const part = itemOf(active);
    return { id: active.id, key: part && part.dataset.key, action: active.dataset.action, node: active };
  }

  function restoreFocus(token) {
    if (!token || (token.node.isConnected && panel.contains(token.node))) return;
    let target = token.id ? document.getElementById(token.id) : null;
    if (!target && token.key) {
      const part = panel.querySelector(`[data-key="${CSS.escape(token.key)}"]`);
      if (part) {
        target = (token.action && part.querySelector(`[data-action="${CSS.escape(token.action)}"]:not([disabled])`))
          || part.querySelector("button:not([disabled]), input, select, textarea, a[href]");
      }
    }
    (target && target.offsetParent !== null ? target : root() || panel).focus();
  }

  let refreshing = null;
  let refreshAgain = false;

  /* Fetch the open card again and merge it in. Calls while one runs coalesce into one more. */
  function refresh() {
    if (!root()) return Promise.resolve();
    if (refreshing) { refreshAgain = true; return refreshing; }
    const busyRoot = root();
    busyRoot.setAttribute("aria-busy", "true");  // (assistive technology waits for the merge to finish)
    refreshing = (async () => {
      do { refreshAgain = false; await refreshOnce(); } while (refreshAgain);
    })().finally(() => { refreshing = null; busyRoot.removeAttribute("aria-busy"); });
    return refreshing;
  }

  async function refreshOnce() {
    const current = root();
    if (!current) return;
    const taskId = current.dataset.task;
    let fresh;
    try {
      fresh = await fetchPanel(panelUrl(taskId));
    } catch (error) {
      if (root() === current) {
        if (error.status === 404) cardGone(current); else announce(`The card could not be refreshed: ${messageOf(error)}`);
      }
      return;
    }
    if (root() !== current) return;
    const token = focusToken();
    // A fetch that left before our own save answered is older than what we know: the refresh
    // that save asked for follows, so this one is dropped rather than wind anything back.
    if (Number(fresh.dataset.version) < Number(current.dataset.version)) return;
    current.dataset.version = fresh.dataset.version;
    current.dataset.archived = fresh.dataset.archived;
    morphChildren(current, fresh);
    restoreFocus(token);
    enhance(current);
  }

  /* The open card was deleted by someone: keep what was typed in view, say so. */
  function cardGone(current) {
    const busy = [...current.children].some(isBusy);
    if (!busy) {
      const key = current.dataset.keyText;
      closePanel();
      notice(`${key} was deleted by someone else`);
      return;
    }
    if (current.querySelector(":scope > .card-gone")) return;
    current.prepend(h("p", { class: "alert card-gone", role: "alert" },
      `${current.dataset.keyText} was deleted by someone else. What you typed is still here: copy it before you close the card.`));
    for (const button of current.querySelectorAll("form button, [data-action]")) {
      if (!["cancel", "use-theirs", "keep-mine"].includes(button.dataset.action)) button.disabled = true;
    }
  }

  /* ---- editing ---- */

  function enterEdit(part, { focus = true } = {}) {
    if (!part || part.classList.contains("editing")) return;
    const editor = part.querySelector("[data-editor]");
    if (!editor) return;
    part.classList.add("editing");
    for (const view of part.querySelectorAll("[data-view]")) view.hidden = true;
    editor.hidden = false;
    const input = editor.querySelector("input, textarea");
    if (input && focus) {
      input.focus();
      const end = input.value.length;
      if (input.setSelectionRange && input.type !== "number" && input.type !== "date") input.setSelectionRange(end, end);
    }
  }

  function exitEdit(part, { reset = false } = {}) {
    part.classList.remove("editing");
    const editor = part.querySelector("[data-editor]");
    if (editor) {
      if (reset) for (const input of editor.querySelectorAll("input, textarea")) input.value = input.defaultValue;
      editor.hidden = true;
      showTab(editor, "write");
    }
    for (const view of part.querySelectorAll("[data-view]")) view.hidden = false;
    delete part.dataset.escArmed;
    clearConflict(part);
    clearError(part.querySelector("[data-error]") || part);
    const back = part.querySelector("[data-action=edit]:not([hidden])") || part.querySelector("button, input");
    if (back) back.focus();
  }

  function cancelEdit(part) {
    exitEdit(part, { reset: true });
    refresh();  // show what the server has now
  }

  function markSaved(part, value, inputs) {
    part.dataset.value = value;
    for (const input of inputs || []) input.defaultValue = input.value;
    clearConflict(part);
  }

  /* One PATCH of the task. `changes` may be a function, computed again for a retry (a set
   * like the assignees is then recomputed from the fresh card). On 409 the panel is fetched
   * again; when `field` now shows a conflict, the person chooses; otherwise it is sent again. */
  let taskSaves = Promise.resolve();

  /* Saves of the task run one after another, each with the version the one before it left:
   * a person tabbing through fields never races their own edits into a 409. */
  function saveTask(changes, control, options) {
    const run = taskSaves.then(() => saveTaskNow(changes, control, options || {}));
    taskSaves = run.catch(() => null);
    return run;
  }

  async function saveTaskNow(changes, control, { field } = {}) {
    if (!root()) return null;
    clearError(control);
    const send = () => api("PATCH", taskUrl(), {
      ...(typeof changes === "function" ? changes() : changes), version: Number(root().dataset.version),
    });
    let task;
    try {
      task = await send();
    } catch (error) {
      if (error.code !== "version_conflict") { showError(control, error); return null; }
      await refresh();
      if (field && field.isConnected && field.classList.contains("conflicted")) {
        showError(control, "Someone changed this card first. What you wrote is kept: choose Use theirs or Keep mine, then save.");
        return null;
      }
      try { task = await send(); } catch (again) { showError(control, again); return null; }
    }
    if (root()) root().dataset.version = task.version;
    announce("Saved");
    refresh();
    return task;
  }

  async function saveTitle(part, form) {
    const input = form.elements.title;
    const title = input.value.trim();
    if (!title) { showError(input, "A card needs a title."); return; }
    if (title === part.dataset.value && !part.classList.contains("conflicted")) { exitEdit(part, { reset: true }); return; }
    const task = await saveTask({ title }, input, { field: part });
    if (!task) return;
    input.value = task.title;
    markSaved(part, task.title, [input]);
    const view = part.querySelector(".title-view");
    if (view) view.textContent = task.title;
    exitEdit(part);
  }

  async function saveDescription(part, form) {
    const textarea = form.elements.description;
    if (textarea.value === part.dataset.value && !part.classList.contains("conflicted")) {
      exitEdit(part, { reset: true });
      return;
    }
    const task = await saveTask({ description: textarea.value }, textarea, { field: part });
    if (!task) return;
    markSaved(part, task.description, [textarea]);
    const view = part.querySelector(".description-view");
    if (view) view.innerHTML = task.description_html;  // rendered by the server with raw HTML escaped
    exitEdit(part);
  }

  function showTab(editor, name) {
    for (const tab of editor.querySelectorAll("[role=tab]")) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    for (const pane of editor.querySelectorAll("[data-tabpanel]")) pane.hidden = pane.dataset.tabpanel !== name;
  }

  async function preview(editor) {
    const pane = editor.querySelector("[data-tabpanel=preview]");
    const text = editor.querySelector("textarea").value;
    showTab(editor, "preview");
    if (!text.trim()) { pane.replaceChildren(h("p", { class: "muted" }, "Nothing to preview.")); return; }
    pane.replaceChildren(h("p", { class: "muted" }, "Rendering…"));
    try {
      const rendered = await api("POST", "/api/markdown/preview", { text });
      pane.innerHTML = rendered.html;  // the server's markdown renderer: raw HTML escaped, unsafe links dropped
    } catch (error) {
      pane.replaceChildren(h("p", { class: "field-error", role: "alert" }, messageOf(error)));
    }
  }

  function currentList(key, attribute) {
    const chips = root().querySelector(`[data-key="${key}"]`);
    return chips ? [...chips.querySelectorAll(`[${attribute}]`)].filter((node) => node.tagName === "LI")
      .map((node) => node.getAttribute(attribute)) : [];
  }

  async function saveField(control) {
    const part = control.closest("[data-field]");
    const name = control.dataset.input;
    let value = control.value;
    if (name === "estimate_minutes") {
      value = parseEstimate(control.value);
      if (Number.isNaN(value)) { showError(control, "Write minutes (90) or hours and minutes (1h 30m)."); return; }
    }
    if (name === "due_date") value = value || null;
    const serverValue = value === null ? "" : String(value);
    if (serverValue === part.dataset.value && !part.classList.contains("conflicted")) { clearError(control); return; }
    const task = await saveTask({ [name]: value }, control, { field: part });
    if (!task) return;
    if (name === "estimate_minutes") control.value = minutesText(task.estimate_minutes);
    markSaved(part, task[name] === null ? "" : String(task[name]), [control]);
  }

  /* ---- people picker (assignees): the project's members at first, the organization's people
   * (GET /api/people?q=) as someone types a name or an email ---- */

  function projectPeople() {
    const data = document.getElementById("panel-people");
    return data ? JSON.parse(data.textContent) : [];
  }

  function pickerOptions(input) {
    return document.getElementById(input.getAttribute("aria-controls"));
  }

  let pickerTimer = null;
  let pickerSeq = 0;

  function pickerSearch(input) {
    clearTimeout(pickerTimer);
    const query = input.value.trim();
    if (!query) { pickerRender(input, projectPeople(), query); return; }
    const local = projectPeople().filter((person) => person.name.toLowerCase().includes(query.toLowerCase()));
    pickerRender(input, local, query, true);
    pickerTimer = setTimeout(async () => {
      const seq = ++pickerSeq;
      try {
        const found = await api("GET", `/api/people?q=${encodeURIComponent(query)}&limit=8`);
        if (seq === pickerSeq && input.isConnected && input.value.trim() === query) pickerRender(input, found.items, query);
      } catch (error) {
        if (seq === pickerSeq) showError(input, error);
      }
    }, 150);
  }

  function pickerRender(input, candidates, query, searching) {
    const list = pickerOptions(input);
    if (!list) return;
    const assigned = new Set(currentList("assignee-chips", "data-user"));
    const matches = candidates.filter((person) => !assigned.has(person.id)).slice(0, 8);
    list.replaceChildren(...matches.map((person, index) => h("li", {
      role: "option", id: `${list.id}-${index}`, "data-user": person.id, "aria-selected": index === 0 ? "true" : "false",
    }, h("span", { class: `avatar avatar-c${person.palette}`, "aria-hidden": "true" }, person.initials),
    h("span", {}, person.name), person.email ? h("span", { class: "muted option-email" }, person.email) : "")));
    if (!matches.length) {
      const text = searching ? "Searching…" : (query ? "No one matches" : "Everyone is assigned");
      list.append(h("li", { class: "muted", role: "presentation" }, text));
    }
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    input.closest(".picker").classList.add("picking");
    pickerActivate(input, matches.length ? list.querySelector("[role=option]") : null);
  }

  function pickerActivate(input, option) {
    const list = pickerOptions(input);
    for (const other of list.querySelectorAll("[role=option]")) other.setAttribute("aria-selected", String(other === option));
    if (option) { input.setAttribute("aria-activedescendant", option.id); option.scrollIntoView({ block: "nearest" }); }
    else input.removeAttribute("aria-activedescendant");
  }

  function pickerClose(input) {
    if (!input.isConnected) return;
    const list = pickerOptions(input);
    if (list) list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    const picker = input.closest(".picker");
    if (picker) picker.classList.remove("picking");
  }

  async function assign(input, userId) {
    pickerClose(input);
    input.value = "";
    input.defaultValue = "";
    const task = await saveTask(() => ({ assignees: [...new Set([...currentList("assignee-chips", "data-user"), userId])] }), input);
    if (task) { announce("Assigned"); input.focus(); }
  }

  /* ---- subtasks ---- */

  async function subtaskPatch(item, body, control) {
    clearError(control);
    try {
      await api("PATCH", `/api/subtasks/${item.dataset.subtaskItem}`, body);
      await refresh();
      return true;
    } catch (error) {
      showError(control, error);
      return false;
    }
  }

  function subtaskMove(item, step) {
    const items = [...item.parentElement.querySelectorAll(":scope > [data-subtask-item]")];
    const index = items.indexOf(item) + step;
    if (index < 0 || index >= items.length) return;
    // Move it here at once (the person sees it), then tell the server; a refusal puts it back.
    if (step < 0) items[index].before(item); else items[index].after(item);
    const focused = document.activeElement;
    if (focused && item.contains(focused)) focused.focus();
    subtaskPatch(item, { position: index }, item.querySelector("input[type=checkbox]") || item)
      .then((ok) => { announce(ok ? `Moved to place ${index + 1}` : "Not moved"); if (!ok) refresh(); });
  }

  /* ---- the rest of the parts ---- */

  async function partCall(control, method, path, body, isForm) {
    clearError(control);
    try {
      const data = await api(method, path, body, isForm);
      return data === null ? true : data;
    } catch (error) {
      showError(control, error);
      return null;
    }
  }

  async function archive(button) {
    const send = () => api("POST", taskUrl("/archive"), { version: Number(root().dataset.version) });
    clearError(button);
    const run = taskSaves.then(() => send().catch(async (error) => {
      if (error.code !== "version_conflict") throw error;
      await refresh();
      return send();
    }));
    taskSaves = run.catch(() => null);
    try {
      await run;
      announce("Archived");
      await refresh();
    } catch (error) { showError(button, error); }
  }

  async function restore(button, taskId) {
    const path = `/api/tasks/${taskId}/restore`;
    clearError(button);
    try {
      try {
        await api("POST", path, {});
      } catch (error) {
        if (!(error.code === "wip_limit_reached" && error.details.may_override
              && window.confirm(`${error.message}. Restore it anyway?`))) throw error;
        await api("POST", path, { override_wip: true });
      }
      return true;
    } catch (error) { showError(button, error); return false; }
  }

  async function onAction(button, event) {
    const action = button.dataset.action;
    const part = itemOf(button);
    switch (action) {
      case "edit": enterEdit(button.closest("[data-field]") || part); break;
      case "cancel": cancelEdit(button.closest(".editing") || part); break;
      case "tab":
        if (button.dataset.tab === "preview") preview(button.closest("[data-editor]"));
        else showTab(button.closest("[data-editor]"), "write");
        break;
      case "use-theirs": {
        const field = button.closest("[data-field]");
        if (field && field._fresh) { const fresh = field._fresh; field.replaceWith(fresh); enhance(fresh); focusIn(fresh); }
        else if (field) { field.remove(); }
        refresh();
        break;
      }
      case "keep-mine": {
        const field = button.closest("[data-field]");
        if (field._fresh) field.dataset.value = field._fresh.dataset.value;
        clearConflict(field);
        const input = field.querySelector("[data-editor] input, [data-editor] textarea, [data-input]");
        if (input) input.focus();
        announce("Kept yours: save it when ready");
        break;
      }
      case "dismiss-gone": { const gone = button.closest(".conflicted"); gone.remove(); refresh(); break; }
      case "confirm": {
        const box = part.querySelector("[data-confirm]");
        part.classList.add("confirming");
        box.hidden = false;
        box.querySelector("button").focus();
        break;
      }
      case "unconfirm": {
        part.classList.remove("confirming");
        button.closest("[data-confirm]").hidden = true;
        const again = part.querySelector("[data-action=confirm]");
        if (again) again.focus();
        refresh();
        break;
      }
      case "unassign": {
        const userId = button.dataset.user;
        await saveTask(() => ({ assignees: currentList("assignee-chips", "data-user").filter((id) => id !== userId) }),
          button.closest(".field-value"));
        break;
      }
      case "unlabel": {
        const label = button.dataset.label;
        await saveTask(() => ({ labels: currentList("label-chips", "data-label").filter((name) => name !== label) }),
          button.closest(".field-value"));
        break;
      }
      case "clear-due": {
        const input = part.querySelector("[data-input=due_date]");
        input.value = "";
        await saveField(input);
        break;
      }
      case "subtask-up": subtaskMove(part, -1); break;
      case "subtask-down": subtaskMove(part, 1); break;
      case "subtask-delete":
        if (await partCall(button, "DELETE", `/api/subtasks/${part.dataset.subtaskItem}`)) {
          announce("Subtask deleted");
          part.remove();
          refresh();
        }
        break;
      case "comment-delete":
        if (await partCall(button, "DELETE", `/api/comments/${part.dataset.comment}`)) {
          announce("Comment deleted");
          part.remove();
          refresh();
        }
        break;
      case "attachment-delete":
        if (await partCall(button, "DELETE", `/api/attachments/${part.dataset.attachment}`)) {
          announce("Attachment deleted");
          part.remove();
          refresh();
        }
        break;
      case "worklog-delete":
        if (await partCall(button, "DELETE", `/api/worklogs/${part.dataset.worklog}`)) {
          announce("Work log deleted");
          part.remove();
          refresh();
        }
        break;
      case "enlarge": enlarge(button.dataset.src, button.dataset.alt); break;
      case "archive": await archive(button); break;
      case "restore":
        if (await restore(button, root().dataset.task)) { announce("Restored to the board"); await refresh(); }
        break;
      case "restore-listed":
        if (await restore(button, button.dataset.task)) {
          const row = button.closest("li");
          notice(`${row.querySelector(".card-key").textContent} is back on the board`);
          row.remove();
        }
        break;
      case "task-delete": {
        const key = root().dataset.keyText;
        if (await partCall(button, "DELETE", taskUrl())) {
          drafts.delete(root().dataset.task);
          panel.replaceChildren();
          closePanel();
          notice(`${key} deleted`);
        }
        break;
      }
      default:
        return;
    }
    if (event) event.preventDefault();
  }

  function focusIn(part) {
    const target = part.querySelector("[data-action=edit], button, input, select, textarea");
    if (target) target.focus();
  }

  function enlarge(src, alt) {
    let viewer = document.getElementById("image-viewer");
    if (!viewer) {
      viewer = h("dialog", { id: "image-viewer", class: "image-viewer", "aria-label": "Image" },
        h("img", { alt: "" }),
        h("form", { method: "dialog" }, h("button", { class: "button small" }, "Close")));
      viewer.addEventListener("click", (event) => { if (event.target === viewer) viewer.close(); });
      document.body.append(viewer);
    }
    const image = viewer.querySelector("img");
    image.src = src;
    image.alt = alt;
    viewer.setAttribute("aria-label", alt);
    viewer.showModal();
  }

  /* ---- forms ---- */

  async function onSubmit(form) {
    const part = itemOf(form);
    switch (form.dataset.form) {
      case "title": await saveTitle(form.closest("[data-field]"), form); break;
      case "description": await saveDescription(form.closest("[data-field]"), form); break;
      case "label": {
        const input = form.elements.label;
        const label = input.value.trim();
        if (!label) return;
        const task = await saveTask(() => ({ labels: [...new Set([...currentList("label-chips", "data-label"), label])] }), input);
        if (task) { input.value = ""; input.defaultValue = ""; input.focus(); }
        break;
      }
      case "subtask-add": {
        const input = form.elements.title;
        if (!input.value.trim()) { showError(input, "Write the subtask first."); return; }
        if (await partCall(input, "POST", taskUrl("/subtasks"), { title: input.value })) {
          input.value = "";
          input.defaultValue = "";
          announce("Subtask added");
          await refresh();
          input.focus();
        }
        break;
      }
      case "subtask-rename": {
        const input = form.elements.title;
        if (!input.value.trim()) { showError(input, "A subtask needs a title."); return; }
        if (await subtaskPatch(part, { title: input.value }, input)) {
          markSaved(part, input.value.trim(), [input]);
          exitEdit(part);
          await refresh();
        }
        break;
      }
      case "comment-add": {
        const textarea = form.elements.body;
        if (!textarea.value.trim()) { showError(textarea, "Write a comment first."); return; }
        if (await partCall(textarea, "POST", taskUrl("/comments"), { body: textarea.value })) {
          textarea.value = "";
          textarea.defaultValue = "";
          announce("Comment added");
          await refresh();
        }
        break;
      }
      case "comment-edit": {
        const textarea = form.elements.body;
        if (!textarea.value.trim()) { showError(textarea, "A comment cannot be empty; delete it instead."); return; }
        if (await partCall(textarea, "PATCH", `/api/comments/${part.dataset.comment}`, { body: textarea.value })) {
          markSaved(part, textarea.value.trim(), [textarea]);
          exitEdit(part);
          announce("Comment saved");
          await refresh();
        }
        break;
      }
      case "attachment-add": {
        const input = form.elements.file;
        if (!input.files.length) { showError(input, "Choose a file first."); return; }
        const button = form.querySelector("button");
        button.disabled = true;
        const done = await partCall(input, "POST", taskUrl("/attachments"), new FormData(form), true);
        button.disabled = false;
        if (done) { form.reset(); announce("File attached"); await refresh(); }
        break;
      }
      case "worklog-add":
      case "worklog-edit": {
        const minutes = form.elements.minutes;
        if (!minutes.value) { showError(minutes, "How many minutes?"); return; }
        const body = { minutes: Number(minutes.value), note: form.elements.note.value };
        if (form.elements.day.value) body.day = form.elements.day.value;
        const editing = form.dataset.form === "worklog-edit";
        const path = editing ? `/api/worklogs/${part.dataset.worklog}` : taskUrl("/worklogs");
        if (await partCall(minutes, editing ? "PATCH" : "POST", path, body)) {
          for (const input of form.querySelectorAll("input")) { if (!editing) input.value = ""; input.defaultValue = input.value; }
          if (editing) exitEdit(part);
          announce(editing ? "Work log saved" : "Work logged");
          await refresh();
        }
        break;
      }
      default:
    }
  }

  /* ---- wiring ---- */

  function enhance(scope) {
    refreshTimes(scope);
    if (typeof Sortable === "undefined") return;
    for (const list of scope.querySelectorAll("ol[data-sortable=true]")) {
      if (list._sortable) continue;
      list._sortable = Sortable.create(list, {
        handle: ".drag-handle", draggable: "[data-subtask-item]", animation: 120,
        onEnd: (event) => {
          if (event.oldDraggableIndex === event.newDraggableIndex) return;
          subtaskPatch(event.item, { position: event.newDraggableIndex }, event.item.querySelector("input[type=checkbox]"))
            .then((ok) => { if (!ok) refresh(); });
        },
      });
    }
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-close-panel]")) { closePanel(); return; }
    if (event.target.closest("[data-open-archived]")) { openArchived(); return; }
    const retry = event.target.closest("[data-retry]");
    if (retry) { openPanel(retry.dataset.retry); return; }
    const listed = event.target.closest("[data-open-task]");
    if (listed) { openPanel(listed.dataset.openTask); return; }
    const option = event.target.closest(".picker-options [role=option]");
    if (option) {
      const input = option.closest(".picker").querySelector("[data-picker]");
      assign(input, option.dataset.user);
      return;
    }
    const action = panel.contains(event.target) && event.target.closest("[data-action]");
    if (action && !action.disabled) { onAction(action, event); return; }
    const card = event.target.closest("li.card");
    if (card && !card.classList.contains("sortable-chosen")) { opener = card; openPanel(card.dataset.task); }
  });

  panel.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-form]");
    if (!form) return;
    event.preventDefault();
    onSubmit(form);
  });

  panel.addEventListener("change", async (event) => {
    const target = event.target;
    const box = target.closest("input[data-subtask]");
    if (box) {
      const item = box.closest("[data-subtask-item]");
      if (!(await subtaskPatch(item, { done: box.checked }, box))) box.checked = !box.checked;
      return;
    }
    if (target.matches("select[data-input]")) {
      const part = target.closest("[data-field]");
      const previous = part.dataset.value;
      if (!(await saveTask({ [target.dataset.input]: target.value }, target, { field: part }))) {
        if (!part.classList.contains("conflicted")) target.value = previous;
        return;
      }
      markSaved(part, target.value, []);
      return;
    }
    if (target.matches("input[data-input]")) saveField(target);
  });

  panel.addEventListener("input", (event) => {
    const target = event.target;
    if (target.matches("[data-picker]")) pickerSearch(target);
    if (target.closest("[data-error]") === null) {
      const box = errorBoxFor(target);
      if (box && box.textContent && isTextEntry(target)) { box.textContent = ""; target.removeAttribute("aria-invalid"); }
    }
  });

  panel.addEventListener("focusin", (event) => {
    if (event.target.matches("[data-picker]")) pickerSearch(event.target);
  });

  panel.addEventListener("focusout", (event) => {
    const input = event.target.closest("[data-picker]");
    if (input) {
      setTimeout(() => {
        const picker = input.closest(".picker");
        if (picker && !picker.contains(document.activeElement)) pickerClose(input);
      }, 150);
    }
  });

  panel.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.matches("[data-picker]")) {
      const list = pickerOptions(target);
      const options = [...list.querySelectorAll("[role=option]")];
      const current = list.querySelector("[aria-selected=true]");
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) { pickerSearch(target); return; }
        const index = options.indexOf(current) + (event.key === "ArrowDown" ? 1 : -1);
        pickerActivate(target, options[(index + options.length) % options.length] || null);
        return;
      }
      if (event.key === "Enter") { event.preventDefault(); if (current && !list.hidden) assign(target, current.dataset.user); return; }
      if (event.key === "Escape" && !list.hidden) { event.stopPropagation(); pickerClose(target); return; }
    }
    if (event.key === "Escape") {
      const editing = target.closest(".editing");
      if (editing) {
        event.stopPropagation();
        // A changed description is not thrown away by one stray Esc: the second one does it.
        const textarea = editing.querySelector("[data-editor] textarea");
        if (textarea && textarea.value !== textarea.defaultValue && !editing.dataset.escArmed) {
          editing.dataset.escArmed = "1";
          showError(textarea, "Press Esc again to discard your changes, or save them.");
          return;
        }
        cancelEdit(editing);
        return;
      }
      const confirming = target.closest(".confirming");
      if (confirming) {
        event.stopPropagation();
        const no = confirming.querySelector("[data-action=unconfirm]");
        if (no) onAction(no);
        return;
      }
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.tagName === "TEXTAREA") {
      const form = target.closest("form[data-form]");
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (event.key === "Enter" && target.matches("input[data-input=estimate_minutes]")) { event.preventDefault(); saveField(target); return; }
    if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && target.matches("[role=tab]")) {
      const editor = target.closest("[data-editor]");
      const name = target.dataset.tab === "write" ? "preview" : "write";
      if (name === "preview") preview(editor); else showTab(editor, "write");
      editor.querySelector(`[role=tab][data-tab=${name}]`).focus();
      return;
    }
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown") && !isTextEntry(target)) {
      const item = target.closest("[data-subtask-item]");
      if (item && item.closest("ol[data-sortable=true]")) { event.preventDefault(); subtaskMove(item, event.key === "ArrowUp" ? -1 : 1); }
    }
  });

  document.addEventListener("keydown", (event) => {
    // A dialog's own keys (Esc closes the dialog, not the card), wherever its focus went.
    if ((event.target.closest && event.target.closest("dialog")) || document.querySelector("dialog[open]")) return;
    if (event.key === "Escape") {
      if (!panel.hidden) closePanel();
      return;
    }
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
    const card = document.activeElement && document.activeElement.closest("li.card");
    if (event.key === "Enter" && card) { opener = card; openPanel(card.dataset.task); }
  });

  /* ---- live ---- */

  document.addEventListener("board:message", (event) => {
    const message = event.detail;
    const data = message.data || {};
    const open = openTaskId();
    if (!open || !root()) return;
    switch (message.type) {
      case "task.updated":
      case "task.moved":
      case "task.archived":
      case "task.restored":
        if (String(data.id) === open) refresh();
        break;
      case "task.deleted":
        if (String(data.id) === open) cardGone(root());
        break;
      case "comment.added":
      case "comment.updated":
      case "comment.deleted":
      case "attachment.added":
      case "attachment.deleted":
      case "worklog.added":
      case "worklog.updated":
      case "worklog.deleted":
        if (String(data.task) === open) refresh();
        break;
      case "resync":
        refresh();
        break;
      default:
    }
  });

  setInterval(() => { if (!panel.hidden) refreshTimes(panel); }, 30000);

  window.CardPanel = { open: openPanel, close: closePanel, refresh, messageOf };
})();
