/* The action editor: action type, source, consent, mappings per parameter with attribute
 * autocomplete, live template previews, and COMPLETED/INCOMPLETE per required group. */
(function () {
  "use strict";
  var S = window.Sluice;
  var data = JSON.parse(document.getElementById("editor-data").textContent);
  var form = document.getElementById("action-form");
  var mappingsBox = document.getElementById("mappings");
  var nameInput = document.getElementById("action-name");
  var enabledBox = document.getElementById("action-enabled");
  var sampleBox = document.getElementById("sample-event");
  var types = {};
  data.type.actions.forEach(function (t) { types[t.id] = t; });
  var current = null;
  var rows = [];
  var nameTouched = Boolean(data.action);
  var readOnly = !data.can_edit;

  // --- values ------------------------------------------------------------------------------
  function defaultMode(p) {
    if (p.default !== null && p.default !== undefined && p.type !== "text") return "value";
    if (p.enum || ["url", "number", "integer", "boolean"].indexOf(p.type) !== -1) return "value";
    if (p.type === "text") return "template";
    return "attribute";
  }

  function shownValue(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  function convert(p, raw) {
    if (p.type === "number" || p.type === "integer") {
      var n = Number(raw);
      return raw.trim() !== "" && !Number.isNaN(n) ? n : raw;
    }
    if (p.type === "boolean") return raw === "true" ? true : raw === "false" ? false : raw;
    if (p.type === "list" || p.type === "object") {
      try { return JSON.parse(raw); } catch (err) { return raw; }
    }
    return raw;
  }

  function sample() {
    var error = document.getElementById("sample-error");
    try {
      var value = JSON.parse(sampleBox.value);
      error.textContent = "";
      return value;
    } catch (err) {
      error.textContent = "The sample event is not valid JSON: " + err.message;
      return null;
    }
  }

  // --- attribute autocomplete ------------------------------------------------------------------
  var datalist = document.getElementById("attribute-options");
  var lastQuery = null;
  var fetchAttributes = S.debounce(async function (prefix) {
    if (prefix === lastQuery) return;
    lastQuery = prefix;
    var result = await S.api("GET", data.attributes_api + "?limit=50" + (prefix ? "&q=" + encodeURIComponent(prefix) : ""));
    if (!result.ok) return;
    datalist.innerHTML = "";
    result.data.attributes.forEach(function (a) {
      var hint = a.type + (a.sample !== null && a.sample !== undefined ? " · e.g. " + shownValue(a.sample).slice(0, 40) : "");
      datalist.appendChild(S.el("option", { value: a.name, label: hint }));
    });
  }, 120);

  // --- template previews -----------------------------------------------------------------------
  async function preview(row) {
    var box = row.preview;
    if (row.mode.value !== "template" || !row.value.value.trim()) { box.textContent = ""; return; }
    var event = sample();
    if (event === null) return;
    var result = await S.api("POST", data.preview_url, { template: row.value.value, event: event });
    box.innerHTML = "";
    box.classList.remove("error");
    if (!result.ok || result.data.error) {
      box.classList.add("error");
      box.appendChild(S.el("span", { class: "plabel", text: "Template error:" }));
      box.appendChild(document.createTextNode((result.data && result.data.error) || "could not render"));
      return;
    }
    box.appendChild(S.el("span", { class: "plabel", text: "Preview:" }));
    box.appendChild(document.createTextNode(result.data.output === "" ? "(empty)" : result.data.output));
  }

  // --- one mapping row -------------------------------------------------------------------------
  function valueControl(p, mode, text, label) {
    var control;
    if (mode === "attribute") {
      control = S.el("input", { type: "text", class: "code", list: "attribute-options", placeholder: "event attribute, e.g. order_id", "aria-label": label + ": attribute", autocomplete: "off", spellcheck: "false" });
    } else if (mode === "template") {
      control = S.el("textarea", { class: "code", rows: p.type === "text" ? "4" : "2", placeholder: "Liquid, e.g. Order {{ order_id }}", "aria-label": label + ": template", spellcheck: "false" });
    } else if (p.enum) {
      control = S.el("select", { "aria-label": label + ": value" }, [S.el("option", { value: "", text: "— not mapped —" })].concat(
        p.enum.map(function (v) { return S.el("option", { value: v, text: v }); })));
    } else if (p.type === "boolean") {
      control = S.el("select", { "aria-label": label + ": value" }, [S.el("option", { value: "", text: "— not mapped —" }), S.el("option", { value: "true", text: "true" }), S.el("option", { value: "false", text: "false" })]);
    } else if (p.type === "text" || p.type === "list" || p.type === "object") {
      control = S.el("textarea", { rows: "3", class: p.type === "text" ? "" : "code", "aria-label": label + ": value" });
    } else {
      control = S.el("input", { type: p.type === "number" || p.type === "integer" ? "text" : (p.type === "url" ? "url" : "text"), "aria-label": label + ": value",
        inputmode: p.type === "number" || p.type === "integer" ? "decimal" : null, placeholder: p.default !== null && p.default !== undefined ? "default: " + shownValue(p.default) : "" });
    }
    control.value = text;
    if (control.tagName === "SELECT" && control.value !== text) control.value = "";
    control.disabled = readOnly;
    return control;
  }

  function makeRow(p, mapping, container, keyed) {
    var label = p.title;
    var mode = mapping ? (("attribute" in mapping) ? "attribute" : ("template" in mapping) ? "template" : "value") : defaultMode(p);
    var text = mapping ? shownValue(mapping[mode]) : "";
    var row = { param: p, key: null };
    var wrap = S.el("div", { class: "mapping-block" });
    var line = S.el("div", { class: "mapping-row" + (keyed ? " keyed" : "") });
    if (keyed) {
      row.key = S.el("input", { type: "text", class: "code", placeholder: p.name === "headers" ? "Header name" : "Name", "aria-label": label + ": name of the entry" });
      row.key.value = mapping && mapping.key ? mapping.key : "";
      row.key.disabled = readOnly;
      row.key.addEventListener("input", update);
      line.appendChild(row.key);
    }
    row.mode = S.el("select", { "aria-label": label + ": take the value from" }, [
      S.el("option", { value: "attribute", text: "Attribute" }),
      S.el("option", { value: "value", text: "Constant" }),
      S.el("option", { value: "template", text: "Template" }),
    ]);
    row.mode.value = mode;
    row.mode.disabled = readOnly;
    line.appendChild(row.mode);
    var cell = S.el("div", {});
    row.value = valueControl(p, mode, text, label);
    cell.appendChild(row.value);
    line.appendChild(cell);
    var buttons = S.el("div", { class: "btn-row" });
    var transformsButton = S.el("button", { type: "button", class: "btn small ghost", "aria-expanded": "false", text: "Transforms" });
    buttons.appendChild(transformsButton);
    if (keyed && !readOnly) {
      var remove = S.el("button", { type: "button", class: "btn small ghost", "aria-label": "Remove this entry of " + label, text: "Remove" });
      remove.addEventListener("click", function () {
        rows.splice(rows.indexOf(row), 1);
        wrap.remove();
        update();
      });
      buttons.appendChild(remove);
    }
    line.appendChild(buttons);
    wrap.appendChild(line);
    var transforms = S.el("div", { class: "transforms" });
    row.transforms = S.el("input", { type: "text", class: "code", placeholder: "e.g. trim, lowercase, sha256 — applied in order", "aria-label": label + ": transforms" });
    row.transforms.value = mapping && mapping.transforms ? mapping.transforms.join(", ") : "";
    row.transforms.disabled = readOnly;
    transforms.appendChild(row.transforms);
    transforms.appendChild(S.el("span", { class: "help small muted", text: "Available: " + data.transforms.join(", ") }));
    transforms.hidden = !row.transforms.value;
    transformsButton.setAttribute("aria-expanded", String(!transforms.hidden));
    transformsButton.addEventListener("click", function () {
      transforms.hidden = !transforms.hidden;
      transformsButton.setAttribute("aria-expanded", String(!transforms.hidden));
      if (!transforms.hidden) row.transforms.focus();
    });
    wrap.appendChild(transforms);
    row.preview = S.el("div", { class: "preview", "aria-live": "polite" });
    wrap.appendChild(row.preview);
    row.error = S.el("div", { class: "field-error" });
    wrap.appendChild(row.error);

    var refreshPreview = S.debounce(function () { preview(row); }, 300);
    function wireValue() {
      row.value.addEventListener("input", function () {
        update();
        if (row.mode.value === "attribute") fetchAttributes(row.value.value.trim());
        refreshPreview();
      });
      row.value.addEventListener("change", update);
      if (row.mode.value === "attribute") row.value.addEventListener("focus", function () { fetchAttributes(row.value.value.trim()); });
    }
    wireValue();
    row.mode.addEventListener("change", function () {
      var old = row.value;
      row.value = valueControl(p, row.mode.value, old.value, label);
      old.replaceWith(row.value);
      wireValue();
      update();
      preview(row);
      row.value.focus();
    });
    container.appendChild(wrap);
    rows.push(row);
    if (mode === "template" && text) preview(row);
    return row;
  }

  // --- building the editor for one action type ---------------------------------------------------
  function groupsOf(t) {
    var groups = [];
    var byName = {};
    t.parameters.forEach(function (p) {
      var name = p.group || (p.required ? "Required" : "Other");
      if (!byName[name]) {
        byName[name] = { name: name, params: [] };
        groups.push(byName[name]);
      }
      byName[name].params.push(p);
    });
    return groups;
  }

  function build(t, mappings) {
    current = t;
    rows = [];
    mappingsBox.innerHTML = "";
    groupsOf(t).forEach(function (group) {
      var required = group.params.some(function (p) { return p.required; });
      var box = S.el("section", { class: "param-group", "aria-label": group.name });
      var head = S.el("div", { class: "pg-head" }, [S.el("h3", { text: group.name })]);
      if (required) head.appendChild(S.el("span", { "data-group-status": group.name }));
      else head.appendChild(S.el("span", { class: "faint small", text: "optional" }));
      box.appendChild(head);
      group.params.forEach(function (p) {
        var param = S.el("div", { class: "param", "data-param": p.name });
        var title = S.el("div", { class: "param-head" }, [S.el("strong", { text: p.title }), S.el("code", { class: "faint", text: p.name })]);
        if (p.required) title.appendChild(S.el("span", { class: "req", text: "required" }));
        if (p.default !== null && p.default !== undefined) title.appendChild(S.el("span", { class: "faint small", text: "default " + shownValue(p.default) }));
        if (p.help) title.appendChild(S.el("span", { class: "help", text: p.help }));
        param.appendChild(title);
        var list = S.el("div", {});
        param.appendChild(list);
        var mine = mappings.filter(function (m) { return m.parameter === p.name; });
        if (p.type === "map") {
          mine.forEach(function (m) { makeRow(p, m, list, true); });
          if (!readOnly) {
            var add = S.el("button", { type: "button", class: "btn small", style: "margin-top:8px", text: "+ Add " + (p.name === "headers" ? "header" : "entry") });
            add.addEventListener("click", function () {
              var row = makeRow(p, null, list, true);
              row.key.focus();
            });
            param.appendChild(add);
          }
          if (!mine.length && readOnly) list.appendChild(S.el("p", { class: "faint small", text: "No entries." }));
        } else {
          makeRow(p, mine[0] || null, list, false);
        }
        param.appendChild(S.el("div", { class: "field-error", "data-error-prefix": "param:" + p.name }));
        box.appendChild(param);
      });
      mappingsBox.appendChild(box);
    });
    consentFor(t);
    sourcesFor(t);
    update();
  }

  function collect() {
    var mappings = [];
    var used = [];
    rows.forEach(function (row) {
      var raw = row.value.value;
      if (raw.trim() === "" && !(row.key && row.key.value.trim())) return;
      var m = { parameter: row.param.name };
      if (row.key) m.key = row.key.value.trim();
      if (row.mode.value === "attribute") m.attribute = raw.trim();
      else if (row.mode.value === "template") m.template = raw;
      else m.value = convert(row.param, raw);
      var transforms = row.transforms.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      if (transforms.length) m.transforms = transforms;
      mappings.push(m);
      used.push(row);
    });
    return { mappings: mappings, rows: used };
  }

  /* SPEC §2.7: each group holding a required parameter is COMPLETED when all its required
   * parameters are mapped (or have a default); the same rule as the server's. */
  function status() {
    var mapped = {};
    collect().mappings.forEach(function (m) { mapped[m.parameter] = true; });
    var groups = {}, order = [], missing = [];
    current.parameters.forEach(function (p) {
      if (!p.required) return;
      var g = p.group || "Required";
      if (!(g in groups)) order.push(g);
      if (mapped[p.name] || (p.default !== null && p.default !== undefined)) {
        if (!(g in groups)) groups[g] = "COMPLETED";
      } else {
        missing.push(p.title);
        groups[g] = "INCOMPLETE";
      }
    });
    return { state: missing.length ? "INCOMPLETE" : "COMPLETED", groups: groups, order: order, missing: missing };
  }

  function pill(state) {
    return S.el("span", { class: "pill " + (state === "COMPLETED" ? "ok" : "warn"), text: state });
  }

  function update() {
    if (!current) return;
    var st = status();
    document.querySelectorAll("[data-group-status]").forEach(function (slot) {
      var state = st.groups[slot.getAttribute("data-group-status")] || "COMPLETED";
      slot.innerHTML = "";
      slot.appendChild(pill(state));
    });
    var list = document.getElementById("group-status");
    list.innerHTML = "";
    if (!st.order.length) list.appendChild(S.el("li", { class: "muted", text: "No required parameters." }));
    st.order.forEach(function (g) {
      list.appendChild(S.el("li", {}, [S.el("span", { text: g }), pill(st.groups[g])]));
    });
    var overall = document.getElementById("overall-status");
    overall.innerHTML = "";
    overall.appendChild(pill(st.state));
    var help = document.getElementById("enable-help");
    if (st.state === "INCOMPLETE") {
      enabledBox.checked = false;
      enabledBox.disabled = true;
      help.textContent = "Map " + st.missing.join(", ") + " to switch it on.";
    } else {
      enabledBox.disabled = readOnly;
      help.textContent = "It runs once the connector is published.";
    }
  }

  // --- consent and source ----------------------------------------------------------------------
  function consentFor(t) {
    var user = document.querySelector("[data-consent-user]");
    var fixed = document.querySelector("[data-consent-fixed]");
    user.hidden = !t.user_consent;
    fixed.hidden = t.user_consent;
    if (!t.user_consent) {
      fixed.textContent = t.consent_categories.length
        ? "Consent categories (fixed for " + t.name + "): " + t.consent_categories.join(", ") + "."
        : t.name + " has no consent category: consent never filters it.";
    }
  }

  function sourceKind() {
    var checked = form.querySelector("[name=source_kind]:checked");
    return checked ? checked.value : "feed";
  }

  function sourcesFor(t) {
    var kinds = form.querySelectorAll("[name=source_kind]");
    kinds.forEach(function (radio) {
      var supported = radio.value === "feed" ? t.data_types.indexOf("event") !== -1 : t.data_types.indexOf("visitor") !== -1;
      var audiences = form.querySelector("[name=audience]");
      if (radio.value === "audience" && (!audiences || !audiences.options.length)) supported = false;
      radio.disabled = !supported || readOnly;
      if (!supported && radio.checked) {
        kinds.forEach(function (other) { if (other !== radio && !other.disabled) other.checked = true; });
      }
    });
    showSource();
  }

  function showSource() {
    var kind = sourceKind();
    form.querySelectorAll("[data-source]").forEach(function (box) { box.hidden = box.getAttribute("data-source") !== kind; });
  }

  function source() {
    if (sourceKind() === "audience") {
      return { audience: form.querySelector("[name=audience]").value, trigger: form.querySelector("[name=trigger]").value };
    }
    return { event_feed: form.querySelector("[name=event_feed]").value, data_source: form.querySelector("[name=data_source]").value || null };
  }

  // --- saving ----------------------------------------------------------------------------------
  function placeMappingErrors(details, used) {
    // "mappings[3].template" belongs to the fourth mapping sent, i.e. used[3].
    var rest = [];
    details.forEach(function (d) {
      var match = /^mappings\[(\d+)\]/.exec(d.field || "");
      var row = match ? used[Number(match[1])] : null;
      if (row) {
        row.error.textContent = (row.error.textContent ? row.error.textContent + " " : "") + d.message;
        row.value.setAttribute("aria-invalid", "true");
      } else {
        rest.push(d);
      }
    });
    return rest;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (readOnly) return;
    if (!current) {
      S.showErrors(form, { details: [{ field: "type", message: "Choose an action type." }] });
      return;
    }
    var collected = collect();
    var body = { name: nameInput.value.trim(), source: source(), mappings: collected.mappings, enabled: enabledBox.checked };
    if (data.mode === "create") body.type = current.id;
    if (current.user_consent) {
      body.consent_categories = Array.prototype.map.call(form.querySelectorAll("[name=consent]:checked"), function (b) { return b.value; });
    }
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var result = await S.api(data.mode === "create" ? "POST" : "PATCH", data.api, body);
    button.disabled = false;
    rows.forEach(function (row) { row.error.textContent = ""; });
    if (!result.ok) {
      var details = (result.data && result.data.details) || [];
      var rest = details.filter(function (d) { return !/^mappings\[\d+\]/.test(d.field || ""); });
      if (rest.length || !details.length) S.showErrors(form, { error: result.data.error, details: rest });
      else S.clearErrors(form);
      placeMappingErrors(details, collected.rows);
      var firstError = form.querySelector(".mapping-block .field-error:not(:empty)");
      if (firstError && !rest.length) firstError.scrollIntoView({ block: "center", behavior: "smooth" });
      return;
    }
    var saved = result.data;
    var message = "Action “" + saved.name + "” saved (" + saved.status.state + ").";
    S.flashNext(message + " Publish the connector to make it live.");
    location.href = data.connector_url + (data.wizard ? "#publish" : "#action-" + saved.id);
  });

  // --- rendering the saved request -------------------------------------------------------------
  var renderButton = document.getElementById("render-request");
  if (renderButton) {
    renderButton.addEventListener("click", async function () {
      var event = sample();
      if (event === null) return;
      var out = document.getElementById("render-output");
      var result = await S.api("POST", data.test_api, { event: event, send: false });
      if (!result.ok) {
        out.textContent = (result.data && result.data.error) || "Could not render.";
        return;
      }
      if (window.Sluice.renderTest) window.Sluice.renderTest(out, result.data);
      else out.textContent = JSON.stringify(result.data, null, 2);
    });
  }

  // --- start -----------------------------------------------------------------------------------
  form.querySelectorAll("[name=action_type]").forEach(function (radio) {
    if (radio.type !== "radio") return;
    radio.addEventListener("change", function () {
      var t = types[radio.value];
      if (!nameTouched || !nameInput.value.trim()) {
        nameInput.value = t.name;
        nameTouched = false;
      }
      build(t, []);
    });
  });
  nameInput.addEventListener("input", function () { nameTouched = true; });
  form.querySelectorAll("[name=source_kind]").forEach(function (radio) { radio.addEventListener("change", showSource); });
  sampleBox.addEventListener("input", S.debounce(function () {
    rows.forEach(function (row) { if (row.mode.value === "template") preview(row); });
  }, 400));
  if (readOnly) {
    form.querySelectorAll("input, select, textarea").forEach(function (el) { if (el !== sampleBox) el.disabled = true; });
  }

  // With AudienceStream installed, audiences for the source come from its API.
  var audienceSelect = form.querySelector("[name=audience]");
  if (audienceSelect && data.audiences_api && !audienceSelect.options.length) {
    var audienceRadio = form.querySelector("[name=source_kind][value=audience]");
    if (audienceRadio) audienceRadio.disabled = true;
    S.api("GET", data.audiences_api).then(function (result) {
      var found = result.ok && result.data ? result.data.audiences || [] : [];
      found.forEach(function (a) { audienceSelect.appendChild(S.el("option", { value: a.id, text: a.name })); });
      if (audienceSelect.getAttribute("data-current")) audienceSelect.value = audienceSelect.getAttribute("data-current");
      if (current) sourcesFor(current);
      if (audienceRadio && !found.length) audienceRadio.disabled = true;
    });
  }

  var initial = data.action ? data.action.type : (form.querySelector("[name=action_type]:checked") || {}).value;
  if (initial && types[initial]) {
    if (!nameInput.value) nameInput.value = types[initial].name;
    build(types[initial], data.action ? data.action.mappings : []);
  }
  fetchAttributes("");
})();
