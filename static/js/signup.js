// The apex's signup form and a new organization's status page (templates/tenancy/).
// Both pages work without this script; it adds the live subdomain check, posts the form
// without a reload (the same view answers JSON), and follows the status as it changes.
(function () {
  "use strict";

  var CHECK_DELAY_MS = 300; // after the last key, so a person typing makes one request per pause
  var POLL_MS = 1000;
  var POLL_BACKOFF_MS = 5000; // after an error or a 429
  var FIELDS = ["name", "slug", "owner_name", "owner_email", "owner_password"];

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(element, text) {
    if (element) element.textContent = text || "";
  }

  // What the person wrote as a name, as a subdomain: "Acme Café, Inc." -> "acme-cafe-inc".
  function slugify(text) {
    return text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40)
      .replace(/-+$/g, "");
  }

  function fieldError(name, messages) {
    var slot = byId(name + "-error");
    var input = byId("id_" + name);
    if (!slot) return;
    slot.textContent = "";
    (messages || []).forEach(function (message) {
      if (slot.tagName === "UL") {
        var item = document.createElement("li");
        item.textContent = message;
        slot.appendChild(item);
      } else {
        slot.textContent += message + " ";
      }
    });
    if (input) {
      if (messages && messages.length) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  function formError(message) {
    var box = byId("form-error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  // --- The signup form --------------------------------------------------------------------

  function signupForm(form) {
    var name = byId("id_name");
    var slug = byId("id_slug");
    var status = byId("slug-status");
    var submit = byId("signup-submit");
    var suffix = form.dataset.domainSuffix || "";
    var availabilityUrl = form.dataset.availabilityUrl;
    // The subdomain follows the name until the person types a subdomain of their own.
    var slugEdited = slug.value !== "" && slug.value !== slugify(name.value);
    var timer = null;
    var inflight = null;
    var asked = 0;

    function showAvailability(state, text) {
      status.dataset.state = state;
      setText(status, text);
    }

    function check() {
      var value = slug.value;
      if (inflight) inflight.abort();
      if (!value) {
        showAvailability("", "");
        return;
      }
      var mine = ++asked;
      inflight = new AbortController();
      fetch(availabilityUrl + "?slug=" + encodeURIComponent(value), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: inflight.signal,
      })
        .then(function (response) {
          return response.json().then(function (body) {
            return { response: response, body: body };
          });
        })
        .then(function (answer) {
          if (mine !== asked) return; // a later check is under way: its answer is the one to show
          var body = answer.body;
          if (!answer.response.ok) {
            var error = body.error || {};
            var message = (error.fields && error.fields.slug && error.fields.slug[0]) || error.message;
            message = message || "The subdomain could not be checked.";
            if (answer.response.status === 429) {
              message = "Too many checks for now; it is checked again when you create the organization.";
            }
            showAvailability("unknown", message);
            return;
          }
          if (body.available) {
            showAvailability("available", body.slug + suffix + " is available");
          } else if (body.code === "taken") {
            showAvailability("taken", body.slug + suffix + " is taken");
          } else {
            showAvailability("invalid", body.reason);
          }
        })
        .catch(function (error) {
          if (error.name === "AbortError" || mine !== asked) return;
          showAvailability("unknown", "The subdomain could not be checked; it is checked again when you create the organization.");
        });
    }

    function scheduleCheck() {
      fieldError("slug", []);
      clearTimeout(timer);
      if (inflight) inflight.abort();
      asked++; // whatever was asked before is not the answer for what is typed now
      // What was said about the previous value is stale the moment it changes.
      if (slug.value) showAvailability("checking", "Checking " + slug.value + suffix + "…");
      else showAvailability("", "");
      timer = setTimeout(check, CHECK_DELAY_MS);
    }

    name.addEventListener("input", function () {
      fieldError("name", []);
      if (slugEdited) return;
      slug.value = slugify(name.value);
      scheduleCheck();
    });
    slug.addEventListener("input", function () {
      slugEdited = slug.value !== "";
      scheduleCheck();
    });
    ["owner_name", "owner_email", "owner_password"].forEach(function (field) {
      byId("id_" + field).addEventListener("input", function () {
        fieldError(field, []);
      });
    });
    if (slug.value && !byId("slug-error").textContent.trim()) check();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submit.disabled = true;
      submit.textContent = "Creating…";
      formError("");
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response
            .json()
            .catch(function () {
              return { error: { message: "The server answered " + response.status + "; try again." } };
            })
            .then(function (body) {
              return { response: response, body: body };
            });
        })
        .then(function (answer) {
          if (answer.response.ok && answer.body.next) {
            window.location.assign(answer.body.next);
            return;
          }
          var error = answer.body.error || {};
          var fields = error.fields || {};
          var placed = false;
          FIELDS.forEach(function (field) {
            fieldError(field, fields[field]);
            if (fields[field] && fields[field].length) placed = true;
          });
          var general = (fields.__all__ || []).join(" ");
          if (!placed && !general) general = error.message || "Your organization was not created; try again.";
          formError(general);
          byId("id_owner_password").value = "";
          if (fields.slug) showAvailability("", "");
          var first = FIELDS.filter(function (field) {
            return fields[field] && fields[field].length;
          })[0];
          if (first) byId("id_" + first).focus();
          else if (general) byId("form-error").focus();
        })
        .catch(function () {
          formError("The server could not be reached. Nothing was sent; check your connection and try again.");
        })
        .finally(function () {
          submit.disabled = false;
          submit.textContent = "Create organization";
        });
    });
  }

  // --- The status page --------------------------------------------------------------------

  var BADGE = { active: "Ready", failed: "Failed", pending: "Setting up", provisioning: "Setting up" };

  function statusDetail(tenant) {
    if (tenant.status === "active") return "Your organization is ready.";
    if (tenant.status === "failed") {
      return "Setting up " + tenant.name + " failed: " + (tenant.failure_reason || "no reason was given") + ".";
    }
    if (tenant.failure_reason) return "An attempt failed and is retried by itself: " + tenant.failure_reason + ".";
    return "Preparing its storage. This usually takes a few seconds.";
  }

  function statusPage(root) {
    var url = root.dataset.statusUrl;
    var badge = byId("status-badge");
    var detail = byId("status-detail");
    var shown = { status: root.dataset.status, detail: detail.textContent };

    function show(tenant) {
      var text = statusDetail(tenant);
      if (tenant.status === shown.status && text === shown.detail) return; // aria-live: announce changes only
      shown = { status: tenant.status, detail: text };
      root.dataset.status = tenant.status;
      badge.className = "status-badge status-" + tenant.status;
      setText(badge, BADGE[tenant.status] || tenant.status);
      setText(detail, text);
      byId("status-progress").hidden = tenant.status === "active" || tenant.status === "failed";
      byId("status-failed-help").hidden = tenant.status !== "failed";
      byId("sign-in").hidden = tenant.status !== "active";
    }

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (tenant) {
          show(tenant);
          if (tenant.status !== "active" && tenant.status !== "failed") setTimeout(poll, POLL_MS);
        })
        .catch(function () {
          setTimeout(poll, POLL_BACKOFF_MS);
        });
    }

    if (root.dataset.status !== "active" && root.dataset.status !== "failed") setTimeout(poll, POLL_MS);
  }

  function start() {
    var form = byId("signup-form");
    if (form) signupForm(form);
    var status = byId("tenant-status");
    if (status) statusPage(status);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
