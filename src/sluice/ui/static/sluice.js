/* Sluice web interface: the shared behaviour of every page.
 *
 * - Sluice.api(): calls the management API with the session's CSRF header
 * - inline validation messages from the API's {"error", "details": [{"field", "message"}]}
 * - confirmation dialogs, dialogs, menus, copy buttons, messages after a reload
 * - spotlight search (/ or Ctrl+K), live counts over Server-Sent Events
 */
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var Sluice = (window.Sluice = { csrf: meta ? meta.content : "" });
  var COUNTERS = ["triggered", "success", "error", "retried", "filtered_consent", "dropped"];

  // --- API calls ---------------------------------------------------------------------------
  Sluice.api = async function (method, url, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": Sluice.csrf, Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { ok: false, status: 0, data: { error: "Sluice could not be reached. Check your connection and retry." } };
    }
    var text = await response.text();
    var data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = response.ok ? text : { error: "The server answered HTTP " + response.status + "." };
      }
    }
    if (!response.ok && (!data || typeof data !== "object")) {
      data = { error: "The server answered HTTP " + response.status + "." };
    }
    if (response.status === 401) {
      data = { error: "Your session has ended. Reload the page and log in again." };
    }
    return { ok: response.ok, status: response.status, data: data };
  };

  Sluice.debounce = function (fn, wait) {
    var timer = null;
    return function () {
      var args = arguments, self = this;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(self, args); }, wait);
    };
  };

  Sluice.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  };

  Sluice.format = function (n) { return Number(n).toLocaleString("en-US"); };

  // --- validation messages -----------------------------------------------------------------
  Sluice.clearErrors = function (root) {
    root.querySelectorAll("[data-error-for], [data-error-prefix], .form-error").forEach(function (el) {
      el.textContent = "";
    });
    root.querySelectorAll('[aria-invalid="true"]').forEach(function (el) { el.removeAttribute("aria-invalid"); });
  };

  function invalidate(box) {
    var holder = box.closest(".field, .param, .cond-row, .mapping-block");
    var input = holder && holder.querySelector("input:not([type=hidden]), select, textarea");
    if (input) input.setAttribute("aria-invalid", "true");
  }

  /* Show each detail beside its field ([data-error-for="field"], or the longest matching
   * [data-error-prefix]); what has no place goes to the form's .form-error box. */
  Sluice.showErrors = function (root, data) {
    Sluice.clearErrors(root);
    data = data || {};
    var details = Array.isArray(data.details) ? data.details : [];
    var unplaced = [];
    var first = null;
    details.forEach(function (d) {
      if (!d || !d.field) return;
      var box = root.querySelector('[data-error-for="' + CSS.escape(d.field) + '"]');
      if (!box) {
        var best = null;
        root.querySelectorAll("[data-error-prefix]").forEach(function (el) {
          var prefix = el.getAttribute("data-error-prefix");
          if (d.field.indexOf(prefix) === 0 && (!best || prefix.length > best.getAttribute("data-error-prefix").length)) best = el;
        });
        box = best;
      }
      var message = d.message + (Array.isArray(d.missing) && d.missing.length ? ": map " + d.missing.join(", ") : "");
      if (box) {
        box.textContent = box.textContent ? box.textContent + " " + message : message;
        invalidate(box);
        first = first || box;
      } else {
        unplaced.push(d.field + ": " + message);
      }
    });
    var general = root.querySelector(".form-error");
    var text = "";
    if (!details.length) text = data.error || "That did not work.";
    else if (unplaced.length === 1 && details.length === 1) text = data.error || unplaced[0];
    else if (unplaced.length) text = unplaced.join(" · ");
    if (general && text) {
      general.textContent = text;
      first = first || general;
    } else if (text) {
      Sluice.toast(text, "error");
    }
    if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
  };

  // --- messages ----------------------------------------------------------------------------
  var toastTimer = null;
  Sluice.toast = function (message, kind) {
    var toast = document.getElementById("toast");
    if (!toast) return;
    toast.className = kind === "error" ? "error" : "";
    toast.textContent = message;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.textContent = ""; }, kind === "error" ? 8000 : 4000);
  };

  /* A message shown on the next page (after a navigation or a reload). */
  Sluice.flashNext = function (message, kind) {
    try { sessionStorage.setItem("sluice.flash", JSON.stringify({ message: message, kind: kind || "success" })); } catch (err) { /* private mode */ }
  };

  Sluice.go = function (url) {
    var target = new URL(url, location.href);
    if (target.pathname === location.pathname && target.search === location.search) {
      location.hash = target.hash;
      location.reload();
    } else {
      location.href = target.href;
    }
  };

  function showQueuedFlash() {
    var raw = null;
    try { raw = sessionStorage.getItem("sluice.flash"); sessionStorage.removeItem("sluice.flash"); } catch (err) { return; }
    if (!raw) return;
    var flash = JSON.parse(raw);
    var container = document.querySelector("main .container");
    if (!container) return;
    var notice = Sluice.el("div", { class: "notice " + (flash.kind || "success"), role: "status" }, [Sluice.el("p", { text: flash.message })]);
    container.insertBefore(notice, container.firstChild);
  }

  // --- confirmation, dialogs, menus ----------------------------------------------------------
  Sluice.confirm = function (message, label) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || !dialog.showModal) return Promise.resolve(window.confirm(message));
    document.getElementById("confirm-message").textContent = message;
    document.getElementById("confirm-ok").textContent = label || "Confirm";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "confirm");
      });
    });
  };

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (form.dataset.confirmed === "yes") return;
    event.preventDefault();
    Sluice.confirm(form.getAttribute("data-confirm"), form.getAttribute("data-confirm-label")).then(function (ok) {
      if (!ok) return;
      form.dataset.confirmed = "yes";
      form.submit();
    });
  }, true);

  function closeMenus(except) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
      if (d !== except) d.removeAttribute("open");
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var openMenu = target.closest("details.dropdown");
    closeMenus(openMenu);

    var opener = target.closest("[data-open-dialog]");
    if (opener) {
      closeMenus(null);
      var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog) dialog.showModal();
      return;
    }
    var closer = target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
      return;
    }
    var copy = target.closest("[data-copy]");
    if (copy) {
      var text = copy.getAttribute("data-copy");
      (navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.reject()).then(
        function () { Sluice.toast("Copied " + text); },
        function () { Sluice.toast("Copy it by hand: " + text); }
      );
      return;
    }
    if (target.closest("[data-history-back]")) {
      history.back();
      return;
    }
    var call = target.closest("[data-api-call]");
    if (call) {
      event.preventDefault();
      apiButton(call);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });

  /* <button data-api-call="POST /api/v1/..." data-body='{}' data-confirm=".." data-done="..">:
   * one API call, then a reload with a message ({key} takes a value from the answer). */
  async function apiButton(button) {
    var spec = button.getAttribute("data-api-call").split(" ");
    if (button.hasAttribute("data-confirm")) {
      var ok = await Sluice.confirm(button.getAttribute("data-confirm"), button.getAttribute("data-confirm-label"));
      if (!ok) return;
    }
    var body = button.hasAttribute("data-body") ? JSON.parse(button.getAttribute("data-body")) : {};
    button.disabled = true;
    var result = await Sluice.api(spec[0], spec[1], body);
    button.disabled = false;
    if (!result.ok) {
      Sluice.toast((result.data && result.data.error) || "That did not work.", "error");
      return;
    }
    var done = (button.getAttribute("data-done") || "Done.").replace(/\{(\w+)\}/g, function (_, key) {
      return result.data && key in result.data ? result.data[key] : "";
    });
    Sluice.flashNext(done);
    location.reload();
  }

  // --- small page helpers ------------------------------------------------------------------
  function wireHelpers() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("form[data-autosubmit-form] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var id = box.getAttribute("data-select-all");
        document.querySelectorAll('input[type=checkbox][form="' + id + '"]').forEach(function (b) { b.checked = box.checked; });
      });
    });
    document.querySelectorAll("[data-filter-cards]").forEach(function (input) {
      var grid = document.querySelector(input.getAttribute("data-filter-cards"));
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase();
        grid.querySelectorAll(".type-card").forEach(function (card) {
          card.hidden = q && card.textContent.toLowerCase().indexOf(q) === -1;
        });
      });
    });
  }

  // --- spotlight -----------------------------------------------------------------------------
  var KIND_LABELS = { connector_type: "Catalog", connector: "Connector", action: "Action", event_feed: "Event feed", audience: "Audience" };

  function spotlight() {
    var input = document.getElementById("spotlight-input");
    var panel = document.getElementById("spotlight-results");
    if (!input || !panel) return;
    var items = [];
    var active = -1;
    var sequence = 0;
    var account = document.body.dataset.account;
    var profile = document.body.dataset.profile;

    function close() {
      panel.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function setActive(index) {
      items.forEach(function (item, i) { item.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (index >= 0 && items[index]) {
        input.setAttribute("aria-activedescendant", items[index].id);
        items[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function render(results, query) {
      panel.innerHTML = "";
      items = [];
      if (!results.length) {
        panel.appendChild(Sluice.el("li", { class: "sp-empty", role: "presentation", text: "Nothing matches “" + query + "”." }));
      }
      results.forEach(function (result) {
        var row = Sluice.el("li", { id: "sp-" + items.length, role: "option", class: "sp-item", "data-url": result.url, "aria-selected": "false" }, [
          Sluice.el("span", { class: "sp-kind", text: KIND_LABELS[result.kind] || result.kind }),
          Sluice.el("span", {}, [
            Sluice.el("span", { class: "sp-title", text: result.title }),
            Sluice.el("span", { class: "sp-sub", text: " " + (result.subtitle || "") }),
          ]),
        ]);
        panel.appendChild(row);
        items.push(row);
        (result.options || []).forEach(function (option) {
          var opt = Sluice.el("li", { id: "sp-" + items.length, role: "option", class: "sp-option", "data-url": option.url, "aria-selected": "false",
            "aria-label": option.title + " — " + result.title, text: option.title });
          panel.appendChild(opt);
          items.push(opt);
        });
      });
      panel.hidden = false;
      input.setAttribute("aria-expanded", "true");
      setActive(items.length ? 0 : -1);
    }

    var search = Sluice.debounce(async function () {
      var query = input.value.trim();
      var mine = ++sequence;
      if (!query) { close(); return; }
      var url = "/api/v1/search?q=" + encodeURIComponent(query);
      if (account) url += "&account=" + encodeURIComponent(account) + "&profile=" + encodeURIComponent(profile);
      var result = await Sluice.api("GET", url);
      if (mine !== sequence || input.value.trim() !== query) return;
      render(result.ok && result.data ? result.data.results : [], query);
    }, 60);

    function go(index) {
      var item = items[index];
      if (item) location.href = item.getAttribute("data-url");
    }

    input.addEventListener("input", search);
    input.addEventListener("focus", function () { if (input.value.trim()) search(); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (panel.hidden) { search(); return; }
        setActive(Math.min(items.length - 1, active + 1));
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        setActive(Math.max(0, active - 1));
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (!panel.hidden && active >= 0) go(active);
      } else if (event.key === "Escape") {
        close();
        input.blur();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
    panel.addEventListener("mousedown", function (event) {
      var item = event.target.closest("[role=option]");
      if (item) { event.preventDefault(); go(items.indexOf(item)); }
    });
    panel.addEventListener("mousemove", function (event) {
      var item = event.target.closest("[role=option]");
      if (item && items.indexOf(item) !== active) setActive(items.indexOf(item));
    });

    document.addEventListener("keydown", function (event) {
      var target = event.target;
      var typing = target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
      if ((event.key === "k" || event.key === "K") && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        input.focus();
        input.select();
      } else if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        input.focus();
        input.select();
      }
    });
  }

  // --- live counts -----------------------------------------------------------------------------
  /* The stream sends each action's counters for a minute, whole, when they change; the page
   * was rendered with the same minutes' counters (#live-baseline), so it adds what grew. */
  function liveCounts() {
    var baselineNode = document.getElementById("live-baseline");
    var base = document.body.dataset.base;
    if (!baselineNode || !base || !window.EventSource) return;
    var baseline = JSON.parse(baselineNode.textContent || "{}");
    var seen = {};
    var source = new EventSource(base + "/live");
    var dots = document.querySelectorAll("[data-live-status]");
    source.addEventListener("open", function () {
      document.body.dataset.live = "open";
      dots.forEach(function (d) { d.classList.add("on"); d.title = "Receiving live counts"; });
    });
    source.addEventListener("error", function () {
      dots.forEach(function (d) { d.classList.remove("on"); d.title = "Reconnecting…"; });
    });
    source.addEventListener("counts", function (event) {
      var d = JSON.parse(event.data);
      var key = d.action_id + "|" + d.minute;
      var prev = seen[key] || (baseline[d.action_id] && baseline[d.action_id][d.minute]) || {};
      seen[key] = d;
      var delta = {}, any = false;
      COUNTERS.forEach(function (c) {
        delta[c] = Math.max(0, (d[c] || 0) - (prev[c] || 0));
        if (delta[c]) any = true;
      });
      if (!any) return;
      document.querySelectorAll(".live[data-counter]").forEach(function (el) {
        var counter = el.getAttribute("data-counter");
        if (!delta[counter]) return;
        if (el.dataset.connector && el.dataset.connector !== d.connector_id) return;
        if (el.dataset.action && el.dataset.action !== d.action_id) return;
        var value = parseInt(el.textContent.replace(/[^0-9]/g, ""), 10) || 0;
        el.textContent = Sluice.format(value + delta[counter]);
        el.classList.remove("bump");
        void el.offsetWidth;
        el.classList.add("bump");
      });
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    showQueuedFlash();
    wireHelpers();
    spotlight();
    liveCounts();
  });
})();
