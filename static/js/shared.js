/* A shared task's page, live (templates/projects/shared.html): the WebSocket /ws/shared/<code>/,
 * authorised by the page's cookie, sends the task's part again whenever it changes
 * (consumers.SharedTaskConsumer), and tells when the link ended (4410) or the pass ran out (4401). */
(function () {
  "use strict";

  const CLOSE_UNAUTHENTICATED = 4401;
  const CLOSE_NOT_FOUND = 4404;
  const CLOSE_ENDED = 4410;
  const main = document.getElementById("shared");
  const article = document.getElementById("shared-task");
  const notice = document.getElementById("shared-notice");
  const status = document.getElementById("shared-status");
  const liveState = document.getElementById("live-state");
  const code = main.dataset.code;
  let socket = null;
  let retryDelay = 500;
  let over = false;
  let keepAlive = null;

  function setState(state, text) {
    liveState.dataset.state = state;
    liveState.textContent = text;
  }

  function say(text) {
    status.textContent = "";
    setTimeout(() => { status.textContent = text; }, 30);
  }

  /* The view is over: say why, with the way back (the short link) when there is one. */
  function finish(message, { again = false, hide = false } = {}) {
    over = true;
    if (keepAlive) clearInterval(keepAlive);
    notice.replaceChildren(document.createTextNode(message));
    if (again) {
      const link = document.createElement("a");
      link.href = `/s/${encodeURIComponent(code)}`;
      link.textContent = "Open the link again";
      notice.append(" ", link);
    }
    notice.hidden = false;
    if (hide) {  // the task is no longer shared: not even what was shown stays
      article.replaceChildren();
      article.hidden = true;
    }
    setState("ended", "not live");
  }

  function show(data) {
    const template = document.createElement("template");
    template.innerHTML = data.html;  // the server's own rendering of the task (markdown sanitized there)
    article.replaceChildren(template.content);
    article.dataset.digest = data.digest;
    document.title = `${data.key} · ${data.title}`;
    article.classList.remove("updated");
    void article.offsetWidth;  // restart the highlight
    article.classList.add("updated");
    say("The task was updated.");
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/ws/shared/${encodeURIComponent(code)}/`);
    socket.addEventListener("open", () => {
      retryDelay = 500;
      setState("live", "live");
      if (keepAlive) clearInterval(keepAlive);
      keepAlive = setInterval(() => { if (socket.readyState === WebSocket.OPEN) socket.send("ping"); }, 25000);
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      if (message.type === "task") {
        // The first message after a (re)connect is the task as it is now: nothing to show if unchanged.
        if (message.data.digest !== article.dataset.digest) show(message.data);
      } else if (message.type === "ended") {
        finish("This link has ended: the task is no longer shared.", { hide: true });
      } else if (message.type === "gone") {
        finish("This task no longer exists.", { hide: true });
      } else if (message.type === "expired") {
        finish("Your access to this shared task timed out; it no longer updates.", { again: true });
      }
    });
    socket.addEventListener("close", (event) => {
      if (keepAlive) clearInterval(keepAlive);
      if (over) return;
      if (event.code === CLOSE_ENDED) { finish("This link has ended: the task is no longer shared.", { hide: true }); return; }
      if (event.code === CLOSE_NOT_FOUND) { finish("This task is no longer available.", { hide: true }); return; }
      if (event.code === CLOSE_UNAUTHENTICATED) {
        finish("Your access to this shared task timed out; it no longer updates.", { again: true });
        return;
      }
      setState("offline", "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    });
  }

  connect();
})();
