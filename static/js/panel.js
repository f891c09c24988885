/* The card panel (htmx): opened from a card, its forms and checkboxes, and live updates of the
 * open card. Uses board.js's `window.Board` (api, toast) and its `board:message` events. */
(function () {
  "use strict";

  const { api, toast } = window.Board;
  const config = JSON.parse(document.getElementById("board-config").textContent);
  const panel = document.getElementById("panel");

  function openPanel(taskId) {
    panel.hidden = false;
    panel.dataset.task = taskId;
    htmx.ajax("GET", `/boards/${config.board}/tasks/${taskId}/`, { target: "#panel", swap: "innerHTML" });
  }

  function reloadPanel() {
    if (!panel.hidden && panel.dataset.task) openPanel(panel.dataset.task);
  }

  function closePanel() {
    panel.hidden = true;
    delete panel.dataset.task;
    panel.replaceChildren();
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.classList.contains("panel-form")) return;
    event.preventDefault();
    try {
      if (form.dataset.upload) {
        await api("POST", form.dataset.upload, new FormData(form), true);
      } else {
        const body = {};
        for (const [name, value] of new FormData(form)) {
          if (value === "") continue;
          body[name] = name === "minutes" ? Number(value) : value;
        }
        await api("POST", form.dataset.post, body);
      }
      reloadPanel();
    } catch (error) { toast(error.message); }
  });

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-close-panel]")) { closePanel(); return; }
    const card = event.target.closest("li.card");
    if (card && !card.classList.contains("sortable-chosen")) openPanel(card.dataset.task);
  });

  panel.addEventListener("change", async (event) => {
    const box = event.target.closest("input[data-subtask]");
    if (!box) return;
    try { await api("PATCH", `/api/subtasks/${box.dataset.subtask}`, { done: box.checked }); reloadPanel(); }
    catch (error) { toast(error.message); box.checked = !box.checked; }
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select");
    if (event.key === "Escape") {
      if (!panel.hidden) closePanel();
      return;
    }
    if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
    const card = document.activeElement && document.activeElement.closest("li.card");
    if (event.key === "Enter" && card) openPanel(card.dataset.task);
  });

  document.addEventListener("board:message", (event) => {
    const message = event.detail;
    const data = message.data;
    switch (message.type) {
      case "task.updated":
        if (String(panel.dataset.task) === String(data.id)) reloadPanel();
        break;
      case "task.deleted":
        if (String(panel.dataset.task) === String(data.id)) closePanel();
        break;
      case "comment.added":
      case "attachment.added":
      case "worklog.added":
        if (String(panel.dataset.task) === String(data.task)) reloadPanel();
        break;
    }
  });
})();
