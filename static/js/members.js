/* The members page (templates/identity/members.html): invite, resend, revoke, change a role, remove.
 * Every write goes through the JSON API (/api/users...), whose answer decides; a refusal is shown
 * next to the field or the row it concerns, and what was typed stays. After a change the lists are
 * read again from the server's own page, so they are rendered (and escaped) in one place. */
(function () {
  "use strict";

  const main = document.getElementById("members-main");
  if (!main) return;
  const status = document.getElementById("members-status");
  const form = document.getElementById("invite-form");
  const projectSelect = document.getElementById("invite-project");
  const projectRole = document.getElementById("invite-project-role");
  const projectNames = new Map();

  // The platform's fetch helper (static/js/api.js).
  const api = (method, path, body) =>
    window.PlatformApi.request(method, path, body, { unreachable: "The server could not be reached. Check your connection and try again." });

  function say(message) {
    // Emptied first, so the same sentence twice is announced twice.
    status.textContent = "";
    window.setTimeout(() => { status.textContent = message; }, 30);
  }

  /* ---- the lists: read again from the page itself ---- */

  async function listsRefresh() {
    const response = await fetch(window.location.pathname, {
      credentials: "same-origin", headers: { Accept: "text/html" },
    });
    if (response.redirected || !response.ok) {
      window.location.reload();
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    if (Boolean(fresh.getElementById("invite-form")) !== Boolean(form)) {
      window.location.reload();  // what this person may do changed (their own role): the whole page
      return;
    }
    document.querySelectorAll("[data-refresh]").forEach((box) => {
      const replacement = box.id && fresh.getElementById(box.id);
      if (replacement) box.replaceChildren(...replacement.childNodes);
    });
    projectCellsName();
  }

  /* ---- projects (the projects service's, through the gateway) ---- */

  function projectCellsName() {
    document.querySelectorAll("[data-project-id]").forEach((cell) => {
      const name = projectNames.get(cell.dataset.projectId);
      if (name) cell.textContent = name;
    });
  }

  async function projectsLoad() {
    if (!projectSelect) return;
    try {
      const answer = await api("GET", "/api/projects");
      const projects = Array.isArray(answer) ? answer : (answer && answer.items) || [];
      for (const project of projects) {
        const label = `${project.key} · ${project.name}`;
        projectNames.set(String(project.id), label);
        const option = document.createElement("option");
        option.value = String(project.id);
        option.textContent = label;
        projectSelect.appendChild(option);
      }
      projectCellsName();
    } catch (error) {
      fieldErrorShow("project_id", `Projects could not be loaded: ${error.message}`);
    }
  }

  if (projectSelect && projectRole) {
    projectSelect.addEventListener("change", () => { projectRole.disabled = !projectSelect.value; });
  }

  /* ---- the invite form ---- */

  function fieldErrorShow(name, message) {
    if (!form) return false;
    const slot = form.querySelector(`[data-error-for="${name}"]`);
    if (!slot) return false;
    slot.textContent = message;
    slot.hidden = false;
    const field = form.elements.namedItem(name);
    if (field && field.setAttribute) field.setAttribute("aria-invalid", "true");
    return true;
  }

  function formErrorsClear() {
    form.querySelectorAll("[data-error-for]").forEach((slot) => {
      slot.textContent = "";
      if (slot.dataset.errorFor === "__all__") slot.hidden = true;
    });
    form.querySelectorAll("[aria-invalid]").forEach((field) => field.removeAttribute("aria-invalid"));
  }

  function formErrorsShow(error) {
    let shown = false;
    for (const [name, messages] of Object.entries(error.fields || {})) {
      const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
      shown = fieldErrorShow(name, text) || shown;
    }
    if (!shown) fieldErrorShow("__all__", error.message);
    const invalid = form.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      formErrorsClear();
      const email = form.elements.namedItem("email");
      if (!email.value.trim()) {
        fieldErrorShow("email", "Enter the address to invite.");
        email.focus();
        return;
      }
      const body = { email: email.value.trim(), role: form.elements.namedItem("role").value };
      if (projectSelect && projectSelect.value) {
        body.project_id = Number(projectSelect.value);
        body.project_role = projectRole.value;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const invitation = await api("POST", "/api/users", body);
        email.value = "";
        await listsRefresh();
        say(`Invitation sent to ${invitation.email}.`);
        email.focus();
      } catch (error) {
        formErrorsShow(error);
      } finally {
        button.disabled = false;
      }
    });
  }

  /* ---- rows: resend, revoke, role, remove ---- */

  function rowError(row, message) {
    const slot = row.querySelector(".row-error");
    if (slot) slot.textContent = message;
  }

  async function rowAct(row, work, done) {
    rowError(row, "");
    const controls = row.querySelectorAll("button, select");
    controls.forEach((control) => { control.disabled = true; });
    try {
      await work();
      await listsRefresh();
      say(done);
    } catch (error) {
      controls.forEach((control) => { control.disabled = false; });
      rowError(row, error.message);
      throw error;
    }
  }

  main.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    const action = button.dataset.action;
    if (action === "resend") {
      const id = row.dataset.invitation;
      rowAct(row, () => api("POST", `/api/users/invitations/${id}/resend`), `A new link was sent to ${row.dataset.email}; the earlier one no longer works.`).catch(() => {});
    } else if (action === "revoke") {
      const id = row.dataset.invitation;
      rowAct(row, () => api("DELETE", `/api/users/invitations/${id}`), `The invitation to ${row.dataset.email} was revoked.`).catch(() => {});
    } else if (action === "remove") {
      const name = row.dataset.name;
      const self = row.dataset.user === main.dataset.me;
      const question = self
        ? "Leave this organization? You lose access to it at once."
        : `Remove ${name} from the organization? They lose access at once.`;
      if (!window.confirm(question)) return;
      rowAct(row, () => api("DELETE", `/api/users/${row.dataset.user}`), `${name} was removed.`)
        .then(() => { if (self) window.location.assign("/login"); })
        .catch(() => {});
    }
  });

  main.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-action=role]");
    if (!select) return;
    const row = select.closest("tr");
    const wanted = select.value;
    const label = select.options[select.selectedIndex].textContent;
    rowAct(row, () => api("PATCH", `/api/users/${row.dataset.user}`, { role: wanted }), `${row.dataset.name} is now ${label}.`)
      .catch(() => { select.value = select.dataset.current; });
  });

  projectsLoad();
})();
