/* The one way every page's script calls the platform's JSON API (loaded by templates/base.html before
 * any page script): the CSRF token, one session renewal when the access token expired, and errors
 * as Error objects carrying the API's `{"error": {...}}` (status, code, details, fields, retryAfter). */
(function () {
  "use strict";

  // Django's CSRF cookie (`__Host-csrftoken` where CSRF_COOKIE_HOST_PREFIX is on): the gateway and the
  // services compare X-CSRFToken with it on every cookie-authenticated write.
  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)(?:__Host-)?csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function goToLogin() {
    const next = window.location.pathname + window.location.search;
    window.location.assign(`/login?next=${encodeURIComponent(next)}`);
  }

  // Access tokens live 15 minutes; the refresh_token cookie renews them without a new sign-in.
  // Calls that fail together wait for one renewal.
  let refreshing = null;
  function sessionRefresh() {
    if (!refreshing) {
      refreshing = fetch("/api/auth/refresh", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json", Accept: "application/json" },
        body: "{}",
      }).then((response) => response.ok).catch(() => false).finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  /* `body` is sent as JSON, or as it is with `form: true` (FormData, for uploads). `unreachable` is
   * the message when the server cannot be reached at all; `signal` aborts. */
  async function request(method, path, body, options = {}, isRetry = false) {
    const headers = { "X-CSRFToken": csrfToken(), Accept: "application/json" };
    if (!options.form && body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, credentials: "same-origin", signal: options.signal,
        body: body === undefined ? undefined : (options.form ? body : JSON.stringify(body)),
      });
    } catch (networkError) {
      if (networkError.name === "AbortError") throw networkError;
      const error = new Error(options.unreachable || "The server cannot be reached; nothing was changed. Try again.");
      error.status = 0;
      error.details = {};
      error.fields = {};
      throw error;
    }
    if (response.status === 401 && !isRetry) {
      if (await sessionRefresh()) return request(method, path, body, options, true);
      if (!options.stayOnPage) goToLogin();
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const details = (data && data.error) || {};
      const error = new Error(details.message || response.statusText || `The server answered ${response.status}`);
      error.status = response.status;
      error.code = details.code;
      error.details = details;
      error.fields = details.fields || {};
      error.retryAfter = response.headers.get("Retry-After");
      throw error;
    }
    return data;
  }

  window.PlatformApi = { csrfToken, goToLogin, sessionRefresh, request };
})();
