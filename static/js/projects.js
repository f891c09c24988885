/* The project list and a project's settings: forms and buttons that call the JSON API, show the
 * server's message next to the field it names (keeping what was typed), and refresh the part of
 * the page they changed from a fresh render of it. Columns reorder by drag (SortableJS) or with
 * their ↑/↓ buttons. No build step; the CSP allows no inline script, so everything is wired here.
 *
 *   <form class="api-form" data-api="PATCH /api/boards/7" data-refresh="#a, #b" data-done="board|reload">
 *   <button data-api="DELETE /api/labels/3" data-body='{"...": 1}' data-confirm="Sure?" data-refresh="#x">
 *   <select data-api-change="PATCH /api/..." name="role">   (sends {role: value} on change)
 */
(function () {
  "use strict";

  const statusBox = document.getElementById("page-status");
  const errorBox = document.getElementById("page-error");

  /* ---- the API ---- */

  // The platform's fetch helper (static/js/api.js).
  const api = (method, path, body) =>
    window.PlatformApi.request(method, path, body, { unreachable: "The server cannot be reached; nothing was changed. Try again." });

  function splitApi(spec) {
    const [method, ...rest] = spec.trim().split(/\s+/);
    return [method.toUpperCase(), rest.join(" ")];
  }

  /* ---- messages ---- */

  function announce(message) {
    if (!statusBox) return;
    statusBox.textContent = "";
    // A fresh text node, so screen readers announce the same message twice in a row too.
    window.setTimeout(() => { statusBox.textContent = message; }, 30);
  }

  function pageError(message) {
    if (!errorBox) { window.alert(message); return; }
    errorBox.textContent = message;
    errorBox.hidden = !message;
    if (message) errorBox.scrollIntoView({ block: "nearest" });
  }

  function clearErrors(form) {
    for (const box of form.querySelectorAll("[data-error-for]")) {
      box.textContent = "";
      if (box.dataset.errorFor === "") box.hidden = true;
    }
    for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  }

  // The server names the field in one of three ways: `field` (a service refusal), `fields` as
  // {name: [messages]} (model validation), or `fields` as pydantic's [{loc, msg}] (the schema).
  function fieldErrors(error) {
    const details = error.details || {};
    const found = [];
    if (details.field) found.push([details.field, error.message]);
    if (Array.isArray(details.fields)) {
      for (const entry of details.fields) {
        const loc = entry.loc || [];
        found.push([String(loc[loc.length - 1] || ""), entry.msg || error.message]);
      }
    } else if (details.fields && typeof details.fields === "object") {
      for (const [name, messages] of Object.entries(details.fields)) {
        found.push([name, [].concat(messages).join(" ")]);
      }
    }
    return found;
  }

  function showError(form, error) {
    let shown = false;
    for (const [name, message] of fieldErrors(error)) {
      const box = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      if (!box || !name) continue;
      box.textContent = message;
      shown = true;
      const field = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (field) {
        field.setAttribute("aria-invalid", "true");
        if (field.type !== "hidden") field.focus();
      }
    }
    if (!shown) {
      const general = form.querySelector('[data-error-for=""]');
      if (general) { general.textContent = error.message; general.hidden = false; } else { pageError(error.message); }
    }
  }

  /* ---- forms ---- */

  function formBody(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled || field.dataset.noSubmit !== undefined) continue;
      if ((field.type === "radio" || field.type === "checkbox") && !field.checked) continue;
      const value = field.value;
      if (field.dataset.type === "int") {
        if (value.trim() !== "") body[field.name] = Number.parseInt(value, 10);
      } else if (field.dataset.type === "int-or-null") {
        body[field.name] = value.trim() === "" ? null : Number(value);
      } else {
        body[field.name] = value;
      }
    }
    return body;
  }

  function apiPath(element) {
    // `{project}` in a dialog's form is the project the dialog was opened for.
    return element.dataset.api.replace("{project}", element.dataset.project || "");
  }

  async function after(element, data) {
    const done = element.dataset.done;
    if (done === "board") {
      const boardId = data && (data.boards ? data.boards[0] && data.boards[0].id : data.id);
      window.location.assign(boardId ? `/boards/${boardId}/` : "/projects/");
      return;
    }
    if (done === "reload") { window.location.reload(); return; }
    if (element.dataset.refresh) await refresh(element.dataset.refresh);
    announce(element.dataset.saved || "Saved");
  }

  // A stale edit: tell what changed and keep the person's values; the next save replaces theirs.
  async function staleEdit(form, error) {
    const current = error.details.current_version;
    const version = form.querySelector('[name="version"]');
    let now = "";
    try {
      if (form.dataset.conflict === "column") {
        const columns = await api("GET", `/api/boards/${form.dataset.board}/columns`);
        const column = columns.find((entry) => `/api/columns/${entry.id}` === splitApi(form.dataset.api)[1]);
        if (column) {
          const category = { todo: "to do", doing: "doing", done: "done" }[column.category] || column.category;
          now = ` It is now "${column.name}" (${category}, WIP limit ${column.wip_limit || "none"}).`;
          if (version) version.value = column.version;
        }
      } else if (form.dataset.conflict === "project") {
        const project = await api("GET", `/api/projects/${document.getElementById("settings").dataset.project}`);
        now = ` It is now named "${project.name}".`;
        if (version) version.value = project.version;
      }
    } catch (ignored) { /* the message below still holds */ }
    if (version && !now && current) version.value = current;
    const general = form.querySelector('[data-error-for=""]');
    const message = `Someone else changed this while you were editing it.${now} Your values are kept here: save again to replace theirs, or reload to take theirs.`;
    if (general) { general.textContent = message; general.hidden = false; } else { pageError(message); }
  }

  async function submit(form, event) {
    event.preventDefault();
    clearErrors(form);
    pageError("");
    if (form.dataset.requires) {
      const needed = form.querySelector(`[name="${form.dataset.requires}"]`);
      if (needed && !needed.value) {
        showError(form, { message: form.dataset.requiresMessage, details: { field: form.dataset.requires } });
        return;
      }
    }
    for (const field of form.querySelectorAll("input[required], textarea[required]")) {
      if (!field.disabled && !field.value.trim()) {
        showError(form, { message: "This cannot be empty", details: { field: field.name } });
        return;
      }
    }
    const buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    for (const button of buttons) button.disabled = true;
    const [method, path] = splitApi(apiPath(form));
    try {
      const data = await api(method, path, formBody(form));
      await after(form, data);
    } catch (error) {
      if (error.code === "version_conflict") await staleEdit(form, error);
      else showError(form, error);
    } finally {
      for (const button of buttons) if (button.isConnected) button.disabled = false;
    }
  }

  async function buttonAction(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    pageError("");
    const [method, path] = splitApi(apiPath(button));
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    button.disabled = true;
    try {
      const data = await api(method, path, body);
      await after(button, data);
    } catch (error) {
      pageError(error.message);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  }

  async function selectChange(select) {
    pageError("");
    const [method, path] = splitApi(select.dataset.apiChange);
    try {
      await api(method, path, { [select.name]: select.value });
      select.dataset.value = select.value;
      await after(select, null);
    } catch (error) {
      select.value = select.dataset.value;  // the server said no: show what holds
      pageError(error.message);
    }
  }

  /* ---- refreshing part of the page ---- */

  async function refresh(selectorList) {
    const selectors = selectorList.split(",").map((selector) => selector.trim()).filter(Boolean);
    const focusedId = document.activeElement && document.activeElement.id;
    let response;
    try {
      response = await fetch(window.location.pathname + window.location.search, {
        credentials: "same-origin", headers: { Accept: "text/html" },
      });
    } catch (networkError) { return; }
    if (!response.ok || new URL(response.url).pathname !== window.location.pathname) {
      window.location.reload();
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const selector of selectors) {
      const old = document.querySelector(selector);
      const replacement = fresh.querySelector(selector);
      if (old && replacement) old.replaceWith(document.importNode(replacement, true));
      else if (old) { window.location.reload(); return; }
    }
    enhance();
    if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
  }

  /* ---- project keys ---- */

  // "Website relaunch" -> "WR", "Marketing" -> "MARK": what Jira and Linear suggest.
  function suggestKey(name) {
    const words = name.normalize("NFKD").replace(/[^\x20-\x7e]/g, "").toUpperCase()
      .split(/[^A-Z0-9]+/).filter(Boolean);
    let key = words.length >= 2 ? words.map((word) => word[0]).join("") : (words[0] || "").slice(0, 4);
    key = key.replace(/^[0-9]+/, "");
    if (key.length < 2 && words.length) key = words.join("").replace(/^[0-9]+/, "").slice(0, 4);
    return key.slice(0, 10);
  }

  function keyInputs() {
    for (const keyInput of document.querySelectorAll("input[data-key-from]")) {
      if (keyInput.dataset.wired) continue;
      keyInput.dataset.wired = "1";
      const nameInput = document.getElementById(keyInput.dataset.keyFrom);
      nameInput.addEventListener("input", () => {
        if (!keyInput.dataset.edited) keyInput.value = suggestKey(nameInput.value);
      });
      keyInput.addEventListener("input", () => {
        keyInput.dataset.edited = keyInput.value ? "1" : "";
        const start = keyInput.selectionStart;
        keyInput.value = keyInput.value.toUpperCase();
        keyInput.setSelectionRange(start, start);
      });
    }
  }

  /* ---- dialogs ---- */

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      const form = dialog.querySelector("form");
      if (opener.dataset.projectId) {
        form.dataset.project = opener.dataset.projectId;
        const label = dialog.querySelector("[data-project-name]");
        if (label) label.textContent = ` in ${opener.dataset.projectName}`;
      }
      dialog.showModal();
      const first = dialog.querySelector("input:not([type=hidden]):not([type=radio])");
      if (first) first.focus();
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) { closer.closest("dialog").close(); return; }
    const button = event.target.closest("button[data-api]");
    if (button) { event.preventDefault(); buttonAction(button); return; }
    const move = event.target.closest("[data-column-move]");
    if (move) { columnStep(move.closest(".column-item"), Number(move.dataset.columnMove)); return; }
    const remove = event.target.closest("[data-column-delete]");
    if (remove) columnDeleteAsk(remove.closest(".column-item"));
  });

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form.api-form");
    if (form) submit(form, event);
  });

  document.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-api-change]");
    if (select) selectChange(select);
  });

  /* ---- columns: reorder and delete ---- */

  async function columnMove(item, position) {
    const list = item.closest(".column-list");
    try {
      await api("PATCH", `/api/columns/${item.dataset.column}`, { position });
      announce(`${item.dataset.name} moved to place ${position + 1}`);
    } catch (error) {
      pageError(error.message);
    }
    await refresh(`#${list.closest(".board-columns").id}`);
  }

  function columnStep(item, step) {
    const items = [...item.closest(".column-list").children];
    const position = items.indexOf(item) + step;
    if (position < 0 || position >= items.length) return;
    columnMove(item, position).then(() => {
      const again = document.querySelector(`#${item.id} [data-column-move="${step}"]`);
      if (again && !again.disabled) again.focus();
      else if (document.getElementById(item.id)) document.querySelector(`#${item.id} [data-column-move]:not([disabled])`).focus();
    });
  }

  function sortables() {
    if (!window.Sortable) return;
    for (const list of document.querySelectorAll(".column-list[data-sortable]")) {
      if (list.dataset.wired) continue;
      list.dataset.wired = "1";
      window.Sortable.create(list, {
        handle: ".drag-handle",
        animation: 150,
        ghostClass: "sortable-ghost",
        onEnd(event) {
          if (event.oldIndex !== event.newIndex) columnMove(event.item, event.newIndex);
        },
      });
    }
  }

  const deleteDialog = document.getElementById("delete-column");

  function columnDeleteAsk(item) {
    const form = deleteDialog.querySelector("form");
    const count = Number(item.dataset.taskCount);
    form.dataset.column = item.dataset.column;
    form.dataset.board = item.closest(".board-columns").id;
    clearErrors(form);
    deleteDialog.querySelector("[data-column-name]").textContent = item.dataset.name;
    deleteDialog.querySelector("[data-task-count]").textContent = `${count} card${count === 1 ? "" : "s"}`;
    deleteDialog.querySelector("[data-has-cards]").hidden = count === 0;
    deleteDialog.querySelector("[data-no-cards]").hidden = count !== 0;
    const select = form.elements.move_to;
    select.replaceChildren();
    for (const other of item.closest(".column-list").children) {
      if (other === item) continue;
      const option = document.createElement("option");
      option.value = other.dataset.column;
      option.textContent = other.dataset.name;
      select.appendChild(option);
    }
    deleteDialog.showModal();
    (count ? select : form.querySelector("button.danger")).focus();
  }

  if (deleteDialog) {
    deleteDialog.querySelector("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      clearErrors(form);
      const hasCards = !deleteDialog.querySelector("[data-has-cards]").hidden;
      const query = hasCards ? `?move_to=${encodeURIComponent(form.elements.move_to.value)}` : "";
      try {
        await api("DELETE", `/api/columns/${form.dataset.column}${query}`);
        deleteDialog.close();
        await refresh(`#${form.dataset.board}`);
        announce("Column deleted");
      } catch (error) {
        showError(form, error);
      }
    });
  }

  /* ---- people picker ---- */

  function pickers() {
    for (const picker of document.querySelectorAll("[data-people-picker]")) {
      if (picker.dataset.wired) continue;
      picker.dataset.wired = "1";
      const form = picker.closest("form");
      form.dataset.requires = "user_id";
      form.dataset.requiresMessage = "Pick a person from the list";
      const input = picker.querySelector("[role=combobox]");
      const list = picker.querySelector("[role=listbox]");
      const userId = picker.querySelector('[name="user_id"]');
      const displayName = picker.querySelector('[name="display_name"]');
      let people = [];
      let active = -1;
      let timer = null;
      let asked = 0;

      function close() { list.hidden = true; input.setAttribute("aria-expanded", "false"); active = -1; }

      function render() {
        list.replaceChildren();
        people.forEach((person, index) => {
          const option = document.createElement("li");
          option.id = `${list.id}-${index}`;
          option.setAttribute("role", "option");
          option.setAttribute("aria-selected", index === active ? "true" : "false");
          const name = document.createElement("span");
          name.className = "picker-name";
          name.textContent = person.name;
          option.appendChild(name);
          if (person.email) {
            const email = document.createElement("span");
            email.className = "muted";
            email.textContent = ` ${person.email}`;
            option.appendChild(email);
          }
          if (document.querySelector(`tr[data-user="${CSS.escape(String(person.id))}"]`)) {
            const already = document.createElement("span");
            already.className = "muted";
            already.textContent = " · already a member (adding changes their role)";
            option.appendChild(already);
          }
          option.addEventListener("mousedown", (event) => { event.preventDefault(); choose(index); });
          list.appendChild(option);
        });
        if (!people.length) {
          const none = document.createElement("li");
          none.className = "muted";
          none.textContent = "Nobody in the organization matches";
          list.appendChild(none);
        }
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
        if (active >= 0) input.setAttribute("aria-activedescendant", `${list.id}-${active}`);
        else input.removeAttribute("aria-activedescendant");
      }

      function choose(index) {
        const person = people[index];
        if (!person) return;
        userId.value = person.id;
        displayName.value = person.name;
        input.value = person.name;
        close();
      }

      async function search() {
        const query = input.value.trim();
        if (!query) { people = []; close(); return; }
        const ask = ++asked;
        try {
          const data = await api("GET", `/api/people?q=${encodeURIComponent(query)}&limit=8`);
          if (ask !== asked) return;
          people = data.items || [];
          active = people.length ? 0 : -1;
          render();
        } catch (error) {
          if (ask === asked) showError(form, { message: error.message, details: { field: "user_id" } });
        }
      }

      input.addEventListener("input", () => {
        userId.value = "";
        displayName.value = "";
        window.clearTimeout(timer);
        timer = window.setTimeout(search, 150);
      });
      input.addEventListener("keydown", (event) => {
        if (list.hidden) return;
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          if (!people.length) return;
          active = (active + (event.key === "ArrowDown" ? 1 : -1) + people.length) % people.length;
          render();
        } else if (event.key === "Enter") {
          event.preventDefault();
          choose(active);
        } else if (event.key === "Escape") {
          close();
        }
      });
      input.addEventListener("blur", () => window.setTimeout(close, 100));
    }
  }

  function enhance() {
    keyInputs();
    sortables();
    pickers();
  }

  enhance();
})();
