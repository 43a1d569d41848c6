/* The event feed condition builder: OR groups of AND conditions (SPEC §8). */
(function () {
  "use strict";
  var S = window.Sluice;
  var data = JSON.parse(document.getElementById("feed-data").textContent);
  var form = document.getElementById("feed-form");
  var box = document.getElementById("condition-groups");
  var datalist = document.getElementById("attribute-options");
  var feed = data.feed;
  var readOnly = !document.getElementById("add-group");
  var NO_VALUE = ["exists", "not_exists", "is_true", "is_false"];
  var TEXT_OPS = ["equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with", "regex", "in"];
  var NUMERIC = ["gt", "gte", "lt", "lte"];

  var fetchAttributes = S.debounce(async function (prefix) {
    var result = await S.api("GET", data.attributes_api + "?limit=50" + (prefix ? "&q=" + encodeURIComponent(prefix) : ""));
    if (!result.ok) return;
    datalist.innerHTML = "";
    var found = result.data.attributes || result.data.visitor_attributes || [];
    found.forEach(function (a) {
      if (!prefix || a.name.toLowerCase().indexOf(prefix.toLowerCase()) === 0) {
        datalist.appendChild(S.el("option", { value: a.name, label: a.type || a.scope || "" }));
      }
    });
  }, 120);

  function shown(value) {
    if (value === undefined || value === null) return "";
    if (Array.isArray(value)) return value.join(", ");
    return String(value);
  }

  function conditionRow(condition, first) {
    var row = S.el("div", { class: "cond-row" });
    row.appendChild(S.el("span", { class: "and", text: first ? "IF" : "AND" }));
    var attribute = S.el("input", { type: "text", class: "code", list: "attribute-options", placeholder: "attribute, e.g. tealium_event", "aria-label": "Attribute", autocomplete: "off", spellcheck: "false" });
    attribute.value = condition.attribute || "";
    attribute.addEventListener("input", function () { fetchAttributes(attribute.value.trim()); });
    var operator = S.el("select", { "aria-label": "Operator" }, data.operators.map(function (op) {
      return S.el("option", { value: op.id, text: op.label });
    }));
    operator.value = condition.operator || "equals";
    var value = S.el("input", { type: "text", "aria-label": "Value", placeholder: "value" });
    value.value = shown(condition.value);
    var ignore = S.el("input", { type: "checkbox", "aria-label": "Ignore case" });
    ignore.checked = Boolean(condition.ignore_case);
    var ignoreLabel = S.el("label", { class: "checkbox small", title: "Ignore upper and lower case" }, [ignore, "Ignore case"]);
    var remove = S.el("button", { type: "button", class: "btn small ghost", "aria-label": "Remove this condition", text: "✕" });
    function sync() {
      var op = operator.value;
      value.hidden = NO_VALUE.indexOf(op) !== -1;
      value.placeholder = op === "in" ? "a, b, c" : NUMERIC.indexOf(op) !== -1 ? "number" : "value";
      ignoreLabel.hidden = TEXT_OPS.indexOf(op) === -1;
    }
    operator.addEventListener("change", sync);
    sync();
    remove.addEventListener("click", function () {
      var group = row.parentNode;
      row.remove();
      if (!group.querySelector(".cond-row")) group.closest(".or-wrap").remove();
      renumber();
    });
    [attribute, operator, value, ignoreLabel, remove].forEach(function (el) { row.appendChild(el); });
    if (readOnly) [attribute, operator, value, ignore].forEach(function (el) { el.disabled = true; });
    if (readOnly) remove.hidden = true;
    row._read = function () {
      var op = operator.value;
      var out = { attribute: attribute.value.trim(), operator: op };
      if (NO_VALUE.indexOf(op) === -1) {
        var raw = value.value.trim();
        if (op === "in") out.value = raw ? raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : [];
        else if (NUMERIC.indexOf(op) !== -1 && raw !== "" && !Number.isNaN(Number(raw))) out.value = Number(raw);
        else out.value = value.value;
      }
      if (TEXT_OPS.indexOf(op) !== -1 && ignore.checked) out.ignore_case = true;
      return out;
    };
    return row;
  }

  function groupBox(conditions) {
    var wrap = S.el("div", { class: "or-wrap" });
    var group = S.el("div", { class: "or-group", role: "group" });
    var head = S.el("div", { class: "btn-row", style: "justify-content:space-between;margin-bottom:8px" }, [
      S.el("strong", { class: "small group-title" }),
    ]);
    if (!readOnly) {
      var removeGroup = S.el("button", { type: "button", class: "btn small ghost", text: "Remove group" });
      removeGroup.addEventListener("click", function () { wrap.remove(); renumber(); });
      head.appendChild(removeGroup);
    }
    group.appendChild(head);
    var list = S.el("div", { class: "cond-list" });
    conditions.forEach(function (c, i) { list.appendChild(conditionRow(c, i === 0)); });
    group.appendChild(list);
    group.appendChild(S.el("div", { class: "field-error group-error" }));
    if (!readOnly) {
      var add = S.el("button", { type: "button", class: "btn small", style: "margin-top:10px", text: "+ AND condition" });
      add.addEventListener("click", function () {
        var row = conditionRow({}, !list.querySelector(".cond-row"));
        list.appendChild(row);
        row.querySelector("input").focus();
        renumber();
      });
      group.appendChild(add);
    }
    wrap.appendChild(S.el("div", { class: "or-sep", text: "OR" }));
    wrap.appendChild(group);
    return wrap;
  }

  function renumber() {
    var wraps = box.querySelectorAll(".or-wrap");
    wraps.forEach(function (wrap, gi) {
      wrap.querySelector(".or-sep").hidden = gi === 0;
      wrap.querySelector(".group-title").textContent = "Group " + (gi + 1) + ": every condition holds";
      wrap.querySelector(".group-error").setAttribute("data-error-prefix", "conditions[" + gi + "]");
      wrap.querySelectorAll(".cond-row").forEach(function (row, ci) {
        row.querySelector(".and").textContent = ci === 0 ? "IF" : "AND";
        var err = row.nextElementSibling && row.nextElementSibling.classList.contains("cond-error") ? row.nextElementSibling : null;
        if (!err) {
          err = S.el("div", { class: "field-error cond-error" });
          row.after(err);
        }
        err.setAttribute("data-error-prefix", "conditions[" + gi + "][" + ci + "]");
      });
    });
    var empty = box.querySelector(".match-all");
    if (!wraps.length && !empty) {
      box.appendChild(S.el("p", { class: "match-all muted", text: "No conditions: this feed matches every event." }));
    } else if (wraps.length && empty) {
      empty.remove();
    }
  }

  function start(conditions) {
    box.innerHTML = "";
    conditions.forEach(function (g) { box.appendChild(groupBox(g)); });
    renumber();
  }

  if (data.load_url) {
    // An object of another API (an audience): loaded here, then edited like a feed.
    S.api("GET", data.load_url).then(function (result) {
      if (!result.ok) {
        S.showErrors(form, result.data);
        return;
      }
      document.getElementById("feed-name").value = result.data.name || "";
      document.querySelector("[data-title]").textContent = result.data.name || "";
      document.querySelector("[data-crumb]").textContent = result.data.name || "";
      start(result.data.conditions || []);
    });
  } else {
    start(feed ? feed.conditions : [[{ attribute: data.noun ? "" : "tealium_event", operator: data.noun ? "gte" : "equals", value: "" }]]);
  }

  var addGroup = document.getElementById("add-group");
  if (addGroup) {
    addGroup.addEventListener("click", function () {
      var wrap = groupBox([{}]);
      box.appendChild(wrap);
      renumber();
      wrap.querySelector("input").focus();
    });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (readOnly) return;
    var conditions = [];
    box.querySelectorAll(".or-group").forEach(function (group) {
      var list = [];
      group.querySelectorAll(".cond-row").forEach(function (row) { list.push(row._read()); });
      conditions.push(list);
    });
    var body = { name: document.getElementById("feed-name").value.trim(), conditions: conditions };
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var result = await S.api(data.method, data.api, body);
    button.disabled = false;
    if (!result.ok) {
      S.showErrors(form, result.data);
      return;
    }
    S.flashNext((data.noun || "Event feed") + " “" + result.data.name + "” saved. It applies within 2 seconds.");
    location.href = data.list_url;
  });
  fetchAttributes("");
})();
