/* The card panel's Share dialog (templates/projects/_share.html): a short link of the open card with
 * an optional expiry, visit limit and password (POST /api/links), its address to copy and its QR
 * code, and the card's links (GET /api/links?task=) with their visits, expiry, lock and status, each
 * to copy or revoke (DELETE /api/links/<code>, after a confirmation). The panel's Share button
 * (`data-share-open`) opens it; the shortener answers every call (docs/api.md). */
(function () {
  "use strict";

  const { api } = window.Board;
  const { messageOf } = window.CardPanel;  // the API's words for a refusal, as the panel shows them
  const dialog = document.getElementById("share-dialog");
  if (!dialog) return;
  const form = document.getElementById("share-form");
  const errorBox = document.getElementById("share-error");
  const result = document.getElementById("share-result");
  const urlInput = document.getElementById("share-url");
  const qr = document.getElementById("share-qr");
  const list = document.getElementById("share-links");
  const listStatus = document.getElementById("share-links-status");
  const STATUS_WORDS = { active: "Active", expired: "Expired", revoked: "Revoked", used_up: "Used up" };
  let current = null;  // {task, key, me, mayManage, opener}
  let listSeq = 0;

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function when(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return "";
    return moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function qrUrl(link) { return link.qr_svg || `/api/links/${encodeURIComponent(link.code)}/qr.svg`; }

  /* ---- opening and closing ---- */

  function open(button) {
    current = {
      task: Number(button.dataset.task),
      key: button.dataset.keyText,
      me: button.dataset.me,
      mayManage: button.dataset.mayManage === "true",
      opener: button,
    };
    dialog.querySelector("[data-share-key]").textContent = current.key;
    form.reset();
    clearError();
    result.hidden = true;
    list.replaceChildren();
    dialog.showModal();
    document.getElementById("share-expires").focus();
    loadLinks();
  }

  function close() { if (dialog.open) dialog.close(); }

  dialog.addEventListener("close", () => {
    const back = current && current.opener;
    current = null;
    listSeq += 1;
    // The panel may have been merged meanwhile: its Share button, or the panel itself.
    const again = back && (back.isConnected ? back : document.querySelector("#panel [data-share-open]"));
    if (again) again.focus();
  });

  /* ---- creating ---- */

  function clearError() {
    errorBox.textContent = "";
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  function refuse(input, message) {
    errorBox.textContent = message;
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  function bodyFromForm() {
    const expires = form.elements.expires_at;
    const visits = form.elements.max_visits;
    const body = { task: current.task, expires_at: null, max_visits: null, password: null };
    if (expires.value) {
      const moment = new Date(expires.value);  // a datetime-local value is the person's local time
      if (Number.isNaN(moment.getTime())) return refuse(expires, "Enter the expiry as a date and a time.");
      if (moment.getTime() <= Date.now()) return refuse(expires, "The expiry must be in the future.");
      body.expires_at = moment.toISOString();
    }
    if (visits.value.trim()) {
      const count = Number(visits.value);
      if (!Number.isInteger(count) || count < 1) return refuse(visits, "The visit limit must be a whole number, 1 or more.");
      body.max_visits = count;
    }
    if (form.elements.password.value) body.password = form.elements.password.value;
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    clearError();
    const body = bodyFromForm();
    if (!body) return;
    // Busy, not disabled: a disabled button would drop the focus out of the dialog.
    if (form.getAttribute("aria-busy") === "true") return;
    form.setAttribute("aria-busy", "true");
    try {
      const link = await api("POST", "/api/links", body);
      form.elements.password.value = "";
      showResult(link);
      loadLinks();
    } catch (error) {
      refuse(null, messageOf(error));
    } finally {
      form.removeAttribute("aria-busy");
    }
  });

  function showResult(link) {
    urlInput.value = link.short_url;
    qr.src = qrUrl(link);
    qr.alt = `QR code of ${link.short_url}`;
    result.hidden = false;
    urlInput.focus();
    urlInput.select();
  }

  /* ---- copying ---- */

  async function copy(text, input, button) {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      say(button, "Copied");
    } catch (error) {
      // No clipboard here (an insecure origin, a refused permission): the address selected, to copy by hand.
      if (input) { input.focus(); input.select(); }
      say(button, "Selected: press Ctrl+C to copy");
    }
  }

  function say(button, text) {
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = text;
    listStatus.textContent = text;
    setTimeout(() => { if (button.isConnected) button.textContent = label; }, 2000);
  }

  /* ---- the card's links ---- */

  async function loadLinks() {
    if (!current) return;
    const seq = ++listSeq;
    listStatus.textContent = "Loading the card's links…";
    let page;
    try {
      page = await api("GET", `/api/links?task=${encodeURIComponent(current.task)}`);
    } catch (error) {
      if (seq !== listSeq) return;
      listStatus.textContent = `The links could not be loaded: ${messageOf(error)}`;
      return;
    }
    if (seq !== listSeq) return;
    const items = page.items || [];
    list.replaceChildren(...items.map(linkItem));
    const total = page.count === undefined ? items.length : page.count;
    listStatus.textContent = total === 0 ? "No links yet."
      : `${total} link${total === 1 ? "" : "s"}${items.length < total ? ` (the ${items.length} newest shown)` : ""}.`;
  }

  /* A padlock (drawn, not an emoji: not every machine has an emoji font). */
  function lockIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("aria-hidden", "true");
    for (const [tag, attrs] of [
      ["rect", { x: "3", y: "7", width: "10", height: "8", rx: "1.5", fill: "currentColor" }],
      ["path", { d: "M5 7V5a3 3 0 0 1 6 0v2", fill: "none", stroke: "currentColor", "stroke-width": "1.8" }],
    ]) {
      const part = document.createElementNS(ns, tag);
      for (const [name, value] of Object.entries(attrs)) part.setAttribute(name, value);
      svg.append(part);
    }
    return h("span", { class: "share-lock", role: "img", "aria-label": "Password protected", title: "Password protected" }, svg);
  }

  function visitsText(link) {
    const visits = link.visits || 0;
    if (link.max_visits) return `${visits} / ${link.max_visits} visits`;
    return `${visits} visit${visits === 1 ? "" : "s"}`;
  }

  function linkItem(link) {
    const status = link.status || "active";
    const active = status === "active";
    const mayRevoke = active && (current.mayManage || String(link.created_by) === String(current.me));
    const item = h("li", { class: `share-link share-${status}`, "data-code": link.code });
    const head = h("div", { class: "share-link-head" },
      h("span", { class: "share-link-url" }, link.short_url),
      link.has_password ? lockIcon() : null,
      h("span", { class: `share-status status-${status}` }, STATUS_WORDS[status] || status));
    const meta = h("div", { class: "share-link-meta" },
      h("span", { "data-share-visits": true }, visitsText(link)),
      " · ",
      link.expires_at ? h("span", {}, `${active ? "expires" : "expiry"} `, h("time", { datetime: link.expires_at }, when(link.expires_at))) : "no expiry",
      link.created_at ? ` · created ${when(link.created_at)}` : "");
    const actions = h("div", { class: "share-link-actions" },
      active ? h("button", { type: "button", class: "mini-button", "data-share-action": "copy", "aria-label": `Copy ${link.short_url}` }, "Copy") : null,
      h("button", { type: "button", class: "mini-button", "data-share-action": "qr", "aria-expanded": "false", "aria-label": `QR code of ${link.short_url}` }, "QR code"),
      mayRevoke ? h("button", { type: "button", class: "mini-button danger", "data-share-action": "revoke", "aria-label": `Revoke ${link.short_url}` }, "Revoke") : null);
    const confirm = mayRevoke ? h("div", { class: "confirm", role: "group", "aria-label": `Confirm revoking ${link.short_url}`, hidden: true },
      h("span", {}, "Revoke this link? Whoever holds it loses access at once."),
      h("button", { type: "button", class: "button small danger", "data-share-action": "revoke-confirm" }, "Revoke"),
      h("button", { type: "button", class: "button secondary small", "data-share-action": "revoke-cancel" }, "Keep it")) : null;
    const image = h("img", { class: "share-qr", alt: `QR code of ${link.short_url}`, width: 168, height: 168, hidden: true });
    image.dataset.src = qrUrl(link);
    item.append(head, meta, actions);
    if (confirm) item.append(confirm);
    item.append(image, h("p", { class: "field-error", role: "alert" }));
    item._link = link;
    return item;
  }

  async function revoke(item) {
    const link = item._link;
    const error = item.querySelector(".field-error");
    error.textContent = "";
    for (const button of item.querySelectorAll("button")) button.disabled = true;
    try {
      await api("DELETE", `/api/links/${encodeURIComponent(link.code)}`);
      listStatus.textContent = `${link.short_url} was revoked.`;
      await loadLinks();
      const again = list.querySelector(`[data-code="${CSS.escape(link.code)}"] button`);
      (again || dialog.querySelector("[data-share-close]")).focus();
    } catch (failure) {
      for (const button of item.querySelectorAll("button")) button.disabled = false;
      error.textContent = messageOf(failure);
      item.querySelector("[data-share-action=revoke-cancel]").focus();
    }
  }

  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) { close(); return; }  // the backdrop
    if (event.target.closest("[data-share-close]")) { close(); return; }
    if (event.target.closest("[data-share-copy]")) { copy(urlInput.value, urlInput, event.target.closest("button")); return; }
    const button = event.target.closest("[data-share-action]");
    if (!button || button.disabled) return;
    const item = button.closest(".share-link");
    const confirm = item.querySelector(".confirm");
    switch (button.dataset.shareAction) {
      case "copy": copy(item._link.short_url, null, button); break;
      case "qr": {
        const image = item.querySelector("img.share-qr");
        if (!image.src) image.src = image.dataset.src;
        image.hidden = !image.hidden;
        button.setAttribute("aria-expanded", String(!image.hidden));
        break;
      }
      case "revoke":
        confirm.hidden = false;
        confirm.querySelector("[data-share-action=revoke-cancel]").focus();
        break;
      case "revoke-cancel":
        confirm.hidden = true;
        item.querySelector("[data-share-action=revoke]").focus();
        break;
      case "revoke-confirm": revoke(item); break;
      default:
    }
  });

  // Esc in an open confirmation answers "Keep it", not "close everything".
  dialog.addEventListener("cancel", (event) => {
    const confirm = document.activeElement && document.activeElement.closest(".share-link .confirm:not([hidden])");
    if (confirm) {
      event.preventDefault();
      confirm.querySelector("[data-share-action=revoke-cancel]").click();
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#panel [data-share-open]");
    if (button) open(button);
  });
})();
