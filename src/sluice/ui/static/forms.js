/* Connector pages: the configuration form (new connector, edit configuration) and the
 * Test action panel. */
(function () {
  "use strict";
  var S = window.Sluice;

  function configurationOf(form, create, problems) {
    var configuration = {};
    form.querySelectorAll("[data-config-field]").forEach(function (wrap) {
      var name = wrap.getAttribute("data-config-field");
      var type = wrap.getAttribute("data-type");
      var field = "configuration." + name;
      var input = wrap.querySelector("input:not([data-clear-secret]), select, textarea");
      if (wrap.getAttribute("data-secret") === "true") {
        // Write-only: empty keeps what is stored; "Clear" removes it.
        var clear = wrap.querySelector("[data-clear-secret]");
        if (clear && clear.checked) configuration[name] = null;
        else if (input.value !== "") configuration[name] = input.value;
        return;
      }
      if (type === "boolean") {
        var fallback = wrap.hasAttribute("data-default") ? JSON.parse(wrap.getAttribute("data-default")) : false;
        if (!create || input.checked !== Boolean(fallback)) configuration[name] = input.checked;
        return;
      }
      var raw = type === "text" ? input.value : input.value.trim();
      if (raw === "") {
        if (!create) configuration[name] = null;
        return;
      }
      if (type === "number" || type === "integer") {
        var n = Number(raw);
        if (Number.isNaN(n)) problems.push({ field: field, message: "must be a number" });
        else configuration[name] = n;
      } else if (type === "map" || type === "object" || type === "list") {
        try {
          configuration[name] = JSON.parse(raw);
        } catch (err) {
          problems.push({ field: field, message: "must be JSON, like " + (type === "list" ? "[\"a\"]" : "{\"key\": \"value\"}") });
        }
      } else {
        configuration[name] = raw;
      }
    });
    return configuration;
  }

  function connectorForms() {
    document.querySelectorAll("form[data-connector-form]").forEach(function (form) {
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        var method = form.getAttribute("data-method");
        var create = method === "POST";
        var problems = [];
        var body = { name: form.querySelector("[data-name-field]").value.trim() };
        if (!body.name) problems.push({ field: "name", message: "is required" });
        body.configuration = configurationOf(form, create, problems);
        if (create) {
          body.type = form.getAttribute("data-type");
          body.enabled = form.querySelector("[data-enabled-field]").checked;
        }
        if (problems.length) {
          S.showErrors(form, { error: "Check the highlighted fields.", details: problems });
          return;
        }
        var button = form.querySelector("button[type=submit]");
        button.disabled = true;
        var result = await S.api(method, form.getAttribute("data-api"), body);
        button.disabled = false;
        if (!result.ok) {
          S.showErrors(form, result.data);
          return;
        }
        if (create) {
          S.flashNext("Connector “" + result.data.name + "” created. Now add what it should do: its first action.");
          location.href = form.getAttribute("data-next-url").replace("{id}", result.data.id);
        } else {
          S.flashNext("Configuration saved to the draft. Publish to apply it.");
          S.go(form.getAttribute("data-done-url"));
        }
      });
    });
  }

  // --- Test action panel -------------------------------------------------------------------------
  function headersTable(headers) {
    var rows = Object.keys(headers || {}).map(function (name) {
      return S.el("tr", {}, [S.el("td", { class: "mono small", text: name }), S.el("td", { class: "mono small", text: String(headers[name]) })]);
    });
    return S.el("table", { class: "table compact" }, [S.el("tbody", {}, rows)]);
  }

  function bodyText(body) {
    if (body === null || body === undefined || body === "") return "(no body)";
    if (typeof body !== "string") return JSON.stringify(body, null, 2);
    try { return JSON.stringify(JSON.parse(body), null, 2); } catch (err) { return body; }
  }

  Sluice.renderTest = function (out, data) {
    out.innerHTML = "";
    if (data.error) {
      out.appendChild(S.el("div", { class: "notice error", role: "alert" }, [
        S.el("p", {}, [S.el("strong", { text: data.error.category + ": " }), data.error.message]),
      ]));
    }
    (data.requests || []).forEach(function (request, i) {
      out.appendChild(S.el("h4", { class: "small", text: "Request " + (i + 1) }));
      out.appendChild(S.el("p", { class: "mono small" }, [S.el("strong", { text: request.method + " " }), request.url]));
      out.appendChild(headersTable(request.headers));
      out.appendChild(S.el("pre", { "data-test-request-body": true, text: bodyText(request.body) }));
      var response = data.responses && data.responses[i];
      if (response) {
        var ok = response.status >= 200 && response.status < 300;
        out.appendChild(S.el("h4", { class: "small", style: "margin-top:12px" }, [
          "Vendor response ",
          S.el("span", { class: "pill " + (ok ? "ok" : "bad"), "data-test-status": response.status, text: "HTTP " + response.status }),
          S.el("span", { class: "faint", text: " " + response.elapsed_ms + " ms" }),
        ]));
        out.appendChild(headersTable(response.headers));
        out.appendChild(S.el("pre", { text: bodyText(response.body) }));
      }
    });
    if (!data.error && !(data.requests || []).length) {
      out.appendChild(S.el("p", { class: "muted", text: "This action sends nothing for this event." }));
    }
    if (!data.error && data.responses) S.toast("Sent. The vendor answered.");
  };

  function testPanel() {
    var panel = document.querySelector("[data-test-panel]");
    if (!panel) return;
    var select = panel.querySelector("#test-action");
    var textarea = panel.querySelector("#test-event");
    var out = panel.querySelector("#test-output");
    document.querySelectorAll("[data-test-action]").forEach(function (link) {
      link.addEventListener("click", function () {
        select.value = link.getAttribute("data-test-action");
        setTimeout(function () { textarea.focus(); }, 50);
      });
    });
    panel.querySelectorAll("[data-test-run]").forEach(function (button) {
      button.addEventListener("click", async function () {
        S.clearErrors(panel);
        var event;
        try {
          event = JSON.parse(textarea.value);
        } catch (err) {
          S.showErrors(panel, { details: [{ field: "event", message: "is not valid JSON: " + err.message }] });
          return;
        }
        var send = button.getAttribute("data-test-run") === "send";
        button.disabled = true;
        out.setAttribute("aria-busy", "true");
        var url = panel.getAttribute("data-api") + "/" + encodeURIComponent(select.value) + "/test";
        var result = await S.api("POST", url, { event: event, send: send });
        button.disabled = false;
        out.removeAttribute("aria-busy");
        if (!result.ok) {
          S.showErrors(panel, result.data);
          return;
        }
        Sluice.renderTest(out, result.data);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    connectorForms();
    testPanel();
  });
})();
