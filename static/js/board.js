/* The live board: drag and drop (SortableJS), quick add, keyboard shortcuts, and live updates
 * over the board's WebSocket. No build step. The card panel is static/js/panel.js: it shares
 * `window.Board` (api, toast, csrfToken) and hears every applied live message as a `board:message`
 * event on `document` (detail: the server's {"seq", "type", "data"}). */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("board-config").textContent);
  const liveState = document.getElementById("live-state");
  const viewersBox = document.getElementById("viewers");
  // The page was rendered at this point of the board's history; the socket catches up from here.
  let lastSeq = config.seq;
  let socket = null;
  let retryDelay = 500;
  let heardAt = Date.now();
  let heartbeatSeconds = 2;

  // The page's one fetch helper (static/js/api.js): JSON, or FormData when `isForm`.
  const { csrfToken, sessionRefresh } = window.PlatformApi;
  const api = (method, path, body, isForm) => window.PlatformApi.request(method, path, body, { form: isForm });

  function toast(message, kind) {
    const box = document.createElement("div");
    box.className = kind === "info" ? "toast toast-info" : "toast";
    box.setAttribute("role", kind === "info" ? "status" : "alert");
    box.textContent = message;
    document.body.appendChild(box);
    setTimeout(() => box.remove(), 4000);
  }

  // One fetch helper (token refresh, JSON errors) and one toast for every script on the page.
  window.Board = { api, toast, csrfToken };

  /* ---- cards ---- */

  function cardsList(columnId) {
    return document.querySelector(`ol.cards[data-column="${columnId}"]`);
  }

  function findCard(taskId) {
    return document.querySelector(`li.card[data-task="${taskId}"]`);
  }

  // Names, initials and colours of the board's people (the server's directory; never ids).
  const people = new Map(JSON.parse(document.getElementById("board-people").textContent).map((p) => [p.id, p]));
  const UNKNOWN = { name: "Unknown user", initials: "?", palette: 12 };

  // The project's label colours by name; `labels.updated` keeps them current.
  const labelColours = new Map(JSON.parse(document.getElementById("board-labels").textContent).map((l) => [l.name, l.colour]));

  function avatarFor(userId, name) {
    const person = people.get(userId) || { ...UNKNOWN, name: name || UNKNOWN.name };
    const avatar = document.createElement("span");
    avatar.className = `avatar avatar-c${person.palette}`;
    avatar.title = person.name;
    avatar.textContent = person.initials;
    return avatar;
  }

  function renderCard(task) {
    const card = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
    card.className = `card priority-${task.priority || "medium"}`;
    card.dataset.task = task.id;
    card.dataset.rank = task.rank;
    card.dataset.version = task.version;
    card.querySelector(".card-key").textContent = task.key;
    card.querySelector(".card-more").setAttribute("aria-label", `Move ${task.key}`);
    card.querySelector(".card-title").textContent = task.title;
    const meta = card.querySelector(".card-meta");
    meta.replaceChildren();
    const labels = document.createElement("span");
    labels.className = "labels";
    for (const label of task.labels || []) {
      const chip = document.createElement("span");
      chip.className = "label";
      chip.textContent = label;
      if (labelColours.has(label)) chip.dataset.colour = labelColours.get(label);
      labels.appendChild(chip);
    }
    meta.appendChild(labels);
    if (task.due_date) {
      const due = document.createElement("time");
      due.className = "due";
      due.dateTime = task.due_date;
      due.textContent = task.due_date;
      meta.appendChild(due);
    }
    if (task.subtasks_total) {
      const sub = document.createElement("span");
      sub.className = "subtasks";
      sub.textContent = `${task.subtasks_done}/${task.subtasks_total}`;
      meta.appendChild(sub);
    }
    if (task.comment_count) {
      const comments = document.createElement("span");
      comments.className = "comments";
      comments.textContent = task.comment_count;
      meta.appendChild(comments);
    }
    const people = document.createElement("span");
    people.className = "assignees";
    for (const user of task.assignees || []) people.appendChild(avatarFor(user));
    meta.appendChild(people);
    return card;
  }

  /* Put a card where its rank says, so every view agrees on the order without a reload. */
  function placeCard(card, columnId) {
    const list = cardsList(columnId);
    if (!list) { card.remove(); return; }
    const rank = card.dataset.rank;
    let next = null;
    for (const other of list.children) {
      if (other !== card && other.dataset.rank > rank) { next = other; break; }
    }
    const focused = document.activeElement === card;  // moving a node drops its focus
    list.insertBefore(card, next);
    if (focused) card.focus();
  }

  function isFiltered() {
    return document.getElementById("columns").dataset.filtered === "true";
  }

  function columnName(columnId) {
    const column = document.querySelector(`section.column[data-column="${columnId}"]`);
    return column ? column.querySelector(".column-head h2").textContent : "";
  }

  /* A column's count is every card in it. Unfiltered, those are the cards shown; filtered, the page
   * came with the column's total, which live messages keep up to date (changeCount). */
  function refreshCounts() {
    const filtered = isFiltered();
    for (const column of document.querySelectorAll("section.column")) {
      const counter = column.querySelector(".wip .count");
      if (!filtered) counter.textContent = column.querySelectorAll("li.card").length;
      const wip = column.dataset.wip ? Number(column.dataset.wip) : null;
      column.querySelector(".wip").classList.toggle("wip-full", wip !== null && Number(counter.textContent) >= wip);
    }
  }

  function changeCount(columnId, delta) {
    const column = document.querySelector(`section.column[data-column="${columnId}"]`);
    if (!column || !isFiltered()) return;
    const counter = column.querySelector(".wip .count");
    counter.textContent = Math.max(0, Number(counter.textContent) + delta);
  }

  /* ---- announcements (screen readers) ---- */

  const announcer = document.getElementById("announcer");
  function announce(text) {
    // Emptied first, so the same words twice in a row are read twice.
    announcer.textContent = "";
    setTimeout(() => { announcer.textContent = text; }, 50);
  }

  function announceMove(card) {
    const column = columnOf(card);
    if (!column) return;
    const cards = [...column.querySelectorAll("li.card")];
    const key = card.querySelector(".card-key").textContent;
    announce(`${key} moved to ${columnName(column.dataset.column)}, ${cards.indexOf(card) + 1} of ${cards.length}`);
  }

  /* ---- drag and drop ---- */

  function enableSorting() {
    if (!config.mayMove) return;
    for (const list of document.querySelectorAll("ol.cards")) {
      if (list._sortable) continue;
      list._sortable = Sortable.create(list, {
        group: "board", animation: 120, delay: 150, delayOnTouchOnly: true,
        onEnd: (event) => moveFromDrop(event),
      });
    }
  }

  async function moveFromDrop(event) {
    const card = event.item;
    const columnId = Number(event.to.dataset.column);
    const previous = card.previousElementSibling;
    const next = card.nextElementSibling;
    const body = { column: columnId, version: Number(card.dataset.version) };
    if (previous) body.after = Number(previous.dataset.task);
    else if (next) body.before = Number(next.dataset.task);
    await sendMove(card, body, event.from.dataset.column);
  }

  async function sendMove(card, body, fromColumn) {
    card.dataset.pending = "true";  // its own task.moved, if it comes first, is not announced as someone else's
    try {
      let moved;
      try {
        moved = await api("POST", `/api/tasks/${card.dataset.task}/move`, body);
      } catch (error) {
        if (error.code === "wip_limit_reached" && error.details.may_override &&
            confirm(`${error.message}. Move it anyway?`)) {
          moved = await api("POST", `/api/tasks/${card.dataset.task}/move`, { ...body, override_wip: true });
        } else {
          throw error;
        }
      }
      card.dataset.rank = moved.rank;
      card.dataset.version = moved.version;
      if (!(card._queued > 1)) {  // a later move of this card, already shown, is still to be sent
        placeCard(card, moved.column);
        announceMove(card);
      }
    } catch (error) {
      toast(error.message);
      placeCard(card, fromColumn);  // put it back where the server still has it
      announce(`${card.querySelector(".card-key").textContent} was not moved: ${error.message}`);
    } finally {
      delete card.dataset.pending;
    }
    refreshCounts();
  }

  /* ---- quick add ---- */

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.classList.contains("quick-add")) {
      event.preventDefault();
      const title = form.title.value.trim();
      if (!title) return;
      try {
        const task = await api("POST", "/api/tasks", { board: config.board, column: Number(form.dataset.column), title });
        form.reset();
        if (!findCard(task.id)) { placeCard(renderCard(task), task.column); refreshCounts(); }
      } catch (error) { toast(error.message); }
    }
  });

  /* ---- keyboard ---- */

  function columnOf(card) { return card.closest("section.column"); }

  function focusNeighbour(card, key) {
    const columns = [...document.querySelectorAll("section.column")];
    if (!card) { const first = document.querySelector("li.card"); if (first) first.focus(); return; }
    const column = columnOf(card);
    const cards = [...column.querySelectorAll("li.card")];
    const index = cards.indexOf(card);
    if (key === "ArrowDown" || key === "j") (cards[index + 1] || card).focus();
    if (key === "ArrowUp" || key === "k") (cards[index - 1] || card).focus();
    if (key === "ArrowLeft" || key === "ArrowRight" || key === "h" || key === "l") {
      const step = key === "ArrowLeft" || key === "h" ? -1 : 1;
      const target = columns[columns.indexOf(column) + step];
      if (!target) return;
      const targetCards = [...target.querySelectorAll("li.card")];
      (targetCards[Math.min(index, targetCards.length - 1)] || card).focus();
    }
  }

  /* Where a card goes for a keyboard or menu move: the neighbouring column at the same place in
   * the list (clamped to its end), or one place up or down in its own column. Places are among the
   * cards shown, so a filtered board moves cards the way it shows them. */
  function movePlan(card, direction) {
    const from = columnOf(card);
    const cards = [...from.querySelectorAll("li.card")];
    const index = cards.indexOf(card);
    const base = { version: Number(card.dataset.version) };
    if (direction === "up" || direction === "down") {
      const neighbour = cards[index + (direction === "up" ? -1 : 1)];
      if (!neighbour) return null;
      return {
        list: from.querySelector("ol.cards"),
        anchor: direction === "up" ? neighbour : neighbour.nextElementSibling,
        body: { ...base, column: Number(from.dataset.column), [direction === "up" ? "before" : "after"]: Number(neighbour.dataset.task) },
      };
    }
    const columns = [...document.querySelectorAll("section.column")];
    const to = columns[columns.indexOf(from) + (direction === "left" ? -1 : 1)];
    if (!to) return null;
    const targets = [...to.querySelectorAll("li.card")];
    const body = { ...base, column: Number(to.dataset.column) };
    const anchor = targets[index] || null;
    if (anchor) body.before = Number(anchor.dataset.task);
    else if (targets.length) body.after = Number(targets[targets.length - 1].dataset.task);
    else body.index = 0;
    return { list: to.querySelector("ol.cards"), anchor, body };
  }

  function moveCard(card, direction) {
    const plan = movePlan(card, direction);
    const key = card.querySelector(".card-key").textContent;
    if (!plan) {
      announce({ left: `${key} is in the first column`, right: `${key} is in the last column`,
        up: `${key} is already first`, down: `${key} is already last` }[direction]);
      return Promise.resolve();
    }
    const fromColumn = columnOf(card).dataset.column;
    plan.list.insertBefore(card, plan.anchor);
    card.focus();
    // Keys pressed faster than the server answers: each move waits for the one before it, and
    // goes with the version that one left (the card shows every move at once).
    card._queued = (card._queued || 0) + 1;
    card._moves = (card._moves || Promise.resolve()).then(() => {
      plan.body.version = Number(card.dataset.version);
      return sendMove(card, plan.body, fromColumn);
    }).finally(() => { card._queued -= 1; });
    return card._moves.then(() => { if (document.activeElement === document.body) card.focus(); });
  }

  /* The card's "⋯" menu: every move shortcut as a control you can see and click. */
  const cardMenu = document.getElementById("card-menu");
  let menuCard = null;

  function openCardMenu(button) {
    menuCard = button.closest("li.card");
    for (const item of cardMenu.querySelectorAll("[data-move]")) {
      item.disabled = !config.mayMove || movePlan(menuCard, item.dataset.move) === null;
    }
    cardMenu.hidden = false;
    const box = button.getBoundingClientRect();
    const width = cardMenu.offsetWidth;
    cardMenu.style.top = `${window.scrollY + box.bottom + 4}px`;
    cardMenu.style.left = `${window.scrollX + Math.max(8, Math.min(box.right - width, window.innerWidth - width - 8))}px`;
    button.setAttribute("aria-expanded", "true");
    const first = cardMenu.querySelector("[role=menuitem]:not(:disabled)");
    if (first) first.focus();
  }

  function closeCardMenu(refocus) {
    if (cardMenu.hidden) return;
    cardMenu.hidden = true;
    const button = menuCard && menuCard.querySelector(".card-more");
    if (button) {
      button.setAttribute("aria-expanded", "false");
      if (refocus) button.focus();
    }
  }

  // Capturing, so a click on the "⋯" button never reaches the card's own click (which opens it).
  document.addEventListener("click", (event) => {
    const button = event.target.closest(".card-more");
    if (button) {
      event.stopPropagation();
      event.preventDefault();
      if (!cardMenu.hidden && menuCard === button.closest("li.card")) closeCardMenu(true);
      else openCardMenu(button);
      return;
    }
    const item = event.target.closest("#card-menu [role=menuitem]");
    if (item) {
      event.stopPropagation();
      const card = menuCard;
      closeCardMenu(false);
      if (item.dataset.move) moveCard(card, item.dataset.move);
      return;
    }
    if (!event.target.closest("#card-menu")) closeCardMenu(false);
  }, true);

  cardMenu.addEventListener("keydown", (event) => {
    const items = [...cardMenu.querySelectorAll("[role=menuitem]:not(:disabled)")];
    const index = items.indexOf(document.activeElement);
    if (event.key === "Escape" || event.key === "Tab") {
      event.preventDefault();
      event.stopPropagation();
      closeCardMenu(true);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      event.stopPropagation();
      const step = event.key === "ArrowDown" ? 1 : -1;
      items[(index + step + items.length) % items.length].focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      items[event.key === "Home" ? 0 : items.length - 1].focus();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("#card-menu")) return;  // the menu's own keys
    if ((event.key === "Enter" || event.key === " ") && event.target.closest && event.target.closest(".card-more")) {
      // The button's own key (it opens the menu): not the card's Enter, which opens the card (panel.js).
      event.stopImmediatePropagation();
      return;
    }
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown") && !event.ctrlKey && !event.metaKey) {
      const focusedCard = document.activeElement && document.activeElement.closest("li.card");
      if (focusedCard && config.mayMove && !event.target.closest("input, textarea, select")) {
        event.preventDefault();
        moveCard(focusedCard, event.key === "ArrowUp" ? "up" : "down");
      }
      return;
    }
    const typing = event.target.closest("input, textarea, select");
    if (event.key === "Escape") {
      if (typing) typing.blur();
      return;
    }
    if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
    const card = document.activeElement && document.activeElement.closest("li.card");
    if (event.key === "/") { event.preventDefault(); document.querySelector("#filter-bar input[name=q]").focus(); }
    else if (event.key === "n" && config.mayCreate) {
      event.preventDefault();
      const input = document.querySelector(".quick-add input");
      if (input) input.focus();
    } else if (event.key === "?") { document.getElementById("help").showModal(); }
    else if ((event.key === "[" || event.key === "]") && card && config.mayMove) {
      event.preventDefault();
      moveCard(card, event.key === "[" ? "left" : "right");
    } else if (["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "h", "j", "k", "l"].includes(event.key)) {
      event.preventDefault();
      focusNeighbour(card, event.key);
    }
  });
  document.getElementById("help-button").addEventListener("click", () => document.getElementById("help").showModal());

  /* ---- live updates ---- */

  /* A filtered board shows what a reload with the same URL would: a card that changed is shown
   * only if the server says the page's filters match it (GET /boards/<id>/cards/?ids=...&<filters>,
   * the page's own filter code). The answer is the card as it is now, or nothing. */
  async function filteredCard(taskId, isRetry) {
    const query = new URLSearchParams(window.location.search);
    query.set("ids", taskId);
    const response = await fetch(`/boards/${config.board}/cards/?${query}`, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
    // An expired access cookie sends a page to the sign-in (a redirect here): renew it once.
    if ((response.status === 401 || response.redirected) && !isRetry && await sessionRefresh()) {
      return filteredCard(taskId, true);
    }
    if (!response.ok) throw new Error(`the board's filter could not be checked (${response.status})`);
    const found = (await response.json()).cards;
    return found.length ? found[0] : null;
  }

  function cardShow(task) {
    const old = findCard(task.id);
    // Never back to an older version (a slower answer), nor out of the user's hand.
    if (old && (Number(old.dataset.version) > task.version || old.classList.contains("sortable-chosen"))) return;
    const card = renderCard(task);
    if (old) {
      const focused = document.activeElement === old;
      old.replaceWith(card);
      if (focused) card.focus();
    }
    placeCard(card, task.column);
  }

  function cardHide(taskId) {
    const card = findCard(taskId);
    if (!card || card.classList.contains("sortable-chosen")) return;
    if (document.activeElement === card) {
      const neighbour = card.nextElementSibling || card.previousElementSibling;
      if (neighbour) neighbour.focus();
    }
    const key = card.querySelector(".card-key").textContent;
    card.remove();
    announce(`${key} no longer matches the filter`);
  }

  async function applyTask(message) {
    const data = message.data;
    if (message.type === "task.created" || message.type === "task.restored") changeCount(data.column, 1);
    if (!isFiltered()) {
      // Our own quick-add comes back as task.created: it is on the page already.
      if (!(message.type === "task.created" && findCard(data.id))) cardShow(data);
      return;
    }
    const ours = message.type === "task.created" && findCard(data.id);  // just added with the quick add
    const task = await filteredCard(data.id);
    if (task) cardShow(task);
    else {
      cardHide(data.id);
      if (ours) toast(`${data.key} was added; the filter hides it`, "info");
    }
  }

  function resyncColumns() {
    htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#columns", swap: "outerHTML" });
  }

  /* Messages are applied one after another, in the order the server numbered them, even when one
   * waits for the server (a filtered board's check): a later move never lands before an earlier edit. */
  let applying = Promise.resolve();
  function receive(message) {
    applying = applying
      .then(() => apply(message))
      .catch(() => resyncColumns())  // could not tell what a change looks like here: read the board again
      .then(() => {
        refreshCounts();
        // Other scripts (the card panel) react to live messages without editing this file.
        document.dispatchEvent(new CustomEvent("board:message", { detail: message }));
      });
  }

  function apply(message) {
    const data = message.data;
    switch (message.type) {
      case "task.created":
      case "task.restored":
      case "task.updated": {
        return applyTask(message);
      }
      case "task.moved": {
        if (data.from_column !== undefined && data.from_column !== data.column) {
          changeCount(data.from_column, -1);
          changeCount(data.column, 1);
        }
        const card = findCard(data.id);
        // A card in the user's hand, or with keyboard moves of ours still on their way, is left alone.
        const ours = card && (card.classList.contains("sortable-chosen") || card._queued > 0);
        if (card && !ours && Number(card.dataset.version) < data.version) {
          card.dataset.rank = data.rank;
          card.dataset.version = data.version;
          placeCard(card, data.column);
          if (!card.dataset.pending) announceMove(card);  // our own move is announced when the API answers
        }
        break;
      }
      case "task.deleted":
      case "task.archived": {
        const card = findCard(data.id);
        if (card) card.remove();
        changeCount(data.column, -1);
        break;
      }
      case "column.reranked":
        for (const [taskId, rank] of Object.entries(data.ranks)) {
          const card = findCard(taskId);
          if (card) card.dataset.rank = rank;
        }
        break;
      case "labels.updated":
        labelColours.clear();
        for (const label of data.labels || []) labelColours.set(label.name, label.colour);
        for (const chip of document.querySelectorAll("li.card .label")) {
          if (labelColours.has(chip.textContent)) chip.dataset.colour = labelColours.get(chip.textContent);
          else delete chip.dataset.colour;
        }
        break;
      case "column.created":
      case "column.updated":
      case "column.deleted":
      case "resync":
        resyncColumns();
        break;
      case "presence":
        showViewers(data.viewers);
        break;
    }
    return undefined;
  }

  function initials(name) {
    const words = name.trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "?";
    return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : words[0].slice(0, 2)).toUpperCase();
  }

  /* Who else has the board open: one avatar per person, named (title and accessible name). */
  function showViewers(viewers) {
    const others = viewers.filter((viewer) => viewer.user_id !== config.user);
    viewersBox.replaceChildren();
    for (const viewer of others) {
      const known = people.get(viewer.user_id);
      const name = (known && known.name) || viewer.name || UNKNOWN.name;
      const item = document.createElement("li");
      item.className = `avatar avatar-c${known ? known.palette : (viewer.palette ?? UNKNOWN.palette)}`;
      item.title = name;
      item.dataset.user = viewer.user_id;
      item.setAttribute("aria-label", name);
      item.textContent = (known && known.initials) || viewer.initials || initials(name);
      viewersBox.appendChild(item);
    }
    viewersBox.hidden = others.length === 0;
    const names = others.map((viewer) => (people.get(viewer.user_id) || viewer).name || UNKNOWN.name);
    viewersBox.setAttribute("aria-label", names.length ? `Also viewing: ${names.join(", ")}` : "Nobody else is viewing");
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const since = lastSeq === null ? "" : `?since=${lastSeq}`;
    socket = new WebSocket(`${scheme}://${window.location.host}/ws/boards/${config.board}/${since}`);
    let opened = false;
    liveState.dataset.state = "connecting";
    liveState.textContent = "connecting";
    socket.onopen = () => {
      opened = true; retryDelay = 500; liveState.dataset.state = "live"; liveState.textContent = "live";
    };
    socket.onmessage = (event) => {
      heardAt = Date.now();
      const message = JSON.parse(event.data);
      if (message.type === "ping") {
        // The heartbeat that keeps us in presence: answered here, not from a timer, so a background
        // tab (whose timers the browser slows to once a minute) still answers at once.
        socket.send("pong");
        return;
      }
      if (message.type === "pong") return;
      if (message.type === "hello") {
        if (lastSeq === null) lastSeq = message.data.seq;
        heartbeatSeconds = message.data.heartbeat || heartbeatSeconds;
        showViewers(message.data.viewers || []);
        return;
      }
      if (message.seq !== null && message.seq !== undefined) {
        if (lastSeq !== null && message.seq <= lastSeq) return;
        lastSeq = message.seq;
      }
      receive(message);
    };
    socket.onclose = async (event) => {
      liveState.dataset.state = "offline";
      liveState.textContent = "offline";
      if (event.code === 4404) return;  // the board is gone or not ours: do not hammer the server
      // A refused handshake or 4401 is most often an expired access token: renew it first.
      if ((event.code === 4401 || !opened) && !(await sessionRefresh()) && event.code === 4401) return;
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    };
  }

  /* The server pings every few seconds: a socket silent for much longer is dead without having said
   * so (a sleeping laptop, a lost network). Close it; onclose reconnects and catches up. */
  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - heardAt > heartbeatSeconds * 4000 + 2000) {
      socket.close();
    }
  }, 2000);

  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "columns" || event.target.id === "columns") enableSorting();
  });

  enableSorting();
  connect();
})();
