/* Quick-open: Ctrl-K / ⌘K on any page, or a [data-quick-open] control (the top bar's Search), opens
 * a dialog that searches the organization's tasks (GET /api/search) as you type; arrows choose,
 * Enter opens the card on its board. The dialog's markup is templates/_quickopen.html: an ARIA
 * combobox (the input) that owns a listbox, the chosen option named by aria-activedescendant.
 *
 * Also, on a board page, the card a link names (/boards/<id>/?task=<task id>, what search results
 * link to) is opened once the page has loaded, through panel.js's window.CardPanel. */
(function () {
  "use strict";

  const dialog = document.getElementById("quickopen");
  if (!dialog) return;
  const input = document.getElementById("quickopen-input");
  const list = document.getElementById("quickopen-list");
  const status = document.getElementById("quickopen-status");
  const allResults = document.getElementById("quickopen-all");
  const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  const LIMIT = 8;
  const DEBOUNCE_MS = 90;

  let items = [];
  let active = -1;
  let timer = null;
  let controller = null;
  let shownFor = null;      // the text the listed items are the answer to
  let openWhenReady = false; // Enter was pressed before the answer for the current text came

  for (const kbd of document.querySelectorAll(".quickopen-kbd")) kbd.textContent = isMac ? "⌘ K" : "Ctrl K";

  /* ---- the API, with the session renewed once when the access token expired ---- */

  const { sessionRefresh } = window.PlatformApi;  // static/js/api.js

  async function searchFetch(text, signal, isRetry) {
    const response = await fetch(`/api/search?q=${encodeURIComponent(text)}&limit=${LIMIT}`, {
      credentials: "same-origin", headers: { Accept: "application/json" }, signal,
    });
    if (response.status === 401 && !isRetry && await sessionRefresh()) return searchFetch(text, signal, true);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) ||
        (response.status === 401 ? "Your session has ended: sign in again." : "Search failed; try again."));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /* ---- rendering: the server escapes everything and marks matches with <mark>; only text and
   * <mark> elements are copied from its HTML into the page ---- */

  function highlightedNodes(html) {
    const parsed = document.createElement("template");
    parsed.innerHTML = html;  // a template's content is inert: nothing in it runs or loads
    const nodes = [];
    for (const node of parsed.content.childNodes) {
      if (node.nodeType === Node.ELEMENT_NODE && node.tagName === "MARK") {
        const mark = document.createElement("mark");
        mark.textContent = node.textContent;
        nodes.push(mark);
      } else {
        nodes.push(document.createTextNode(node.textContent));
      }
    }
    return nodes;
  }

  function span(className, children) {
    const element = document.createElement("span");
    element.className = className;
    if (typeof children === "string") element.textContent = children;
    else element.append(...children);
    return element;
  }

  function render(text, found) {
    items = found;
    shownFor = text;
    list.replaceChildren();
    found.forEach((item, index) => {
      const option = document.createElement("li");
      option.id = `quickopen-option-${index}`;
      option.className = "quickopen-option";
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.dataset.index = index;
      const where = `${item.project_key} · ${item.board_name} · ${item.column_name}` +
        (item.archived ? " · archived" : "") + (item.matched === "comment" ? " · in a comment" : "");
      option.append(
        span("quickopen-key", item.key),
        span("quickopen-title", highlightedNodes(item.title_html)),
        span("quickopen-where", where),
      );
      if (item.snippet_html && item.matched !== "key" && item.matched !== "title") {
        option.append(span("quickopen-snippet", highlightedNodes(item.snippet_html)));
      }
      list.appendChild(option);
    });
    input.setAttribute("aria-expanded", found.length ? "true" : "false");
    choose(found.length ? 0 : -1);
    status.textContent = found.length
      ? `${found.length === LIMIT ? "The best " : ""}${found.length} task${found.length === 1 ? "" : "s"}`
      : `No tasks match “${text}”`;
    allResults.href = `/search/?q=${encodeURIComponent(text)}`;
  }

  function choose(index) {
    const options = list.querySelectorAll("[role=option]");
    active = index;
    options.forEach((option, at) => option.setAttribute("aria-selected", at === index ? "true" : "false"));
    if (index >= 0 && options[index]) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function clear() {
    if (controller) controller.abort();
    items = [];
    shownFor = "";
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    choose(-1);
    status.textContent = "";
    allResults.href = "/search/";
  }

  /* ---- searching as one types: the newest text wins, older answers are dropped ---- */

  async function search(text) {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    try {
      const data = await searchFetch(text, mine.signal, false);
      if (mine !== controller) return;
      render(text, data.items);
      if (openWhenReady) {
        openWhenReady = false;
        if (items.length) go(items[0]);
      }
    } catch (error) {
      if (error.name === "AbortError" || mine !== controller) return;
      openWhenReady = false;
      items = [];
      list.replaceChildren();
      input.setAttribute("aria-expanded", "false");
      choose(-1);
      status.textContent = error.message;
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    openWhenReady = false;
    const text = input.value;
    if (!text.trim()) { clear(); return; }
    timer = setTimeout(() => search(text), DEBOUNCE_MS);
  });

  /* ---- opening a card ---- */

  function boardHere() {
    const config = document.getElementById("board-config");
    return config ? JSON.parse(config.textContent).board : null;
  }

  function cardOnPage(taskId) {
    return document.querySelector(`li.card[data-task="${Number(taskId)}"]`);
  }

  /* The card panel of this board page: panel.js's window.CardPanel when it is there (it opens any
   * card of the board, archived ones too), else a click on the card as the board would take it. */
  function panelOpen(taskId) {
    if (window.CardPanel && window.CardPanel.open) { window.CardPanel.open(String(taskId)); return true; }
    const card = cardOnPage(taskId);
    if (!card) return false;
    card.focus();
    card.click();
    return true;
  }

  function go(item) {
    if (boardHere() !== item.board) { window.location.assign(item.url); return; }
    dialog.close();
    if (!panelOpen(item.id)) window.location.assign(item.url);
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      event.stopPropagation();
      if (!items.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      choose((active + step + items.length) % items.length);
    } else if (event.key === "Enter") {
      event.stopPropagation();
      if (!input.value.trim()) { event.preventDefault(); return; }
      if (shownFor === input.value && items.length) {
        event.preventDefault();
        go(items[Math.max(active, 0)]);
      } else if (shownFor !== input.value) {
        event.preventDefault();  // the answer for this text is on its way: open its best hit then
        openWhenReady = true;
        clearTimeout(timer);
        search(input.value);
      }
      // else: nothing matched; the form goes on to the search page, which says so
    } else if (event.key === "Escape") {
      event.stopPropagation();  // the dialog closes itself; the board must not react too
    }
  });

  list.addEventListener("mousedown", (event) => event.preventDefault());  // the input keeps the focus
  list.addEventListener("mousemove", (event) => {
    const option = event.target.closest("[role=option]");
    if (option && Number(option.dataset.index) !== active) choose(Number(option.dataset.index));
  });
  list.addEventListener("click", (event) => {
    const option = event.target.closest("[role=option]");
    if (option) go(items[Number(option.dataset.index)]);
  });

  /* ---- the dialog ---- */

  function show() {
    if (dialog.open) { input.select(); return; }
    dialog.showModal();
    input.select();
  }

  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();  // a click on the backdrop
  });

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === "k") {
      event.preventDefault();
      show();
    }
  });

  document.addEventListener("click", (event) => {
    const control = event.target.closest("[data-quick-open]");
    if (!control || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    show();
  });

  /* ---- a board page opened for one card (?task=<id>) ---- */

  function openLinkedCard() {
    const url = new URL(window.location.href);
    const taskId = url.searchParams.get("task");
    if (boardHere() === null || !/^\d+$/.test(taskId || "")) return;
    url.searchParams.delete("task");
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    if (!panelOpen(taskId) && window.Board && window.Board.toast) {
      window.Board.toast("That card is not on this board any more.");
    }
  }

  // After every script of the page has set up (the board's click handler among them).
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", openLinkedCard);
  else setTimeout(openLinkedCard, 0);
})();
