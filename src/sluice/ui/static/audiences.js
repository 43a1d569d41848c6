/* AudienceStream pages (a hook): lists and the visitor lookup, through the management API. */
(function () {
  "use strict";
  var S = window.Sluice;

  function unavailable(box, result) {
    box.innerHTML = "";
    var text = result.status === 404 ? "AudienceStream's API is not installed on this server yet." : (result.data && result.data.error) || "Could not load.";
    box.appendChild(S.el("div", { class: "empty small", text: text }));
  }

  function conditionsText(conditions) {
    if (!conditions || !conditions.length) return "Every visitor";
    return conditions.map(function (group) {
      return group.map(function (c) {
        return c.attribute + " " + c.operator + ("value" in c ? " " + JSON.stringify(c.value) : "");
      }).join(" and ");
    }).join("  OR  ");
  }

  function table(headers, rows) {
    return S.el("div", { class: "table-wrap" }, [S.el("table", { class: "table" }, [
      S.el("thead", {}, [S.el("tr", {}, headers.map(function (h) {
        var numeric = h.slice(-4) === ":num";
        return S.el("th", { class: numeric ? "num" : null, text: numeric ? h.slice(0, -4) : h });
      }))]),
      S.el("tbody", {}, rows),
    ])]);
  }

  async function list(box) {
    var section = box.getAttribute("data-section");
    var result = await S.api("GET", box.getAttribute("data-api"));
    if (!result.ok) { unavailable(box, result); return; }
    var items = result.data[section === "audiences" ? "audiences" : "visitor_attributes"] || [];
    box.innerHTML = "";
    if (!items.length) {
      box.appendChild(S.el("div", { class: "empty small", text: section === "audiences"
        ? "No audiences yet. Create one to group visitors by what they did."
        : "No visitor attributes yet. Create them with the API: POST …/visitor-attributes." }));
      return;
    }
    var base = box.getAttribute("data-base");
    if (section === "audiences") {
      box.appendChild(table(["Name", "Conditions", "Members:num"], items.map(function (a) {
        return S.el("tr", {}, [
          S.el("td", {}, [S.el("a", { href: base + "/audiences/" + encodeURIComponent(a.id), text: a.name })]),
          S.el("td", { class: "mono small", text: conditionsText(a.conditions) }),
          S.el("td", { class: "num", text: a.member_count === undefined ? "—" : S.format(a.member_count) }),
        ]);
      })));
    } else {
      box.appendChild(table(["Name", "Scope", "Type", "Rules"], items.map(function (a) {
        return S.el("tr", {}, [
          S.el("td", {}, [S.el("code", { text: a.name })]),
          S.el("td", { text: a.scope || "" }),
          S.el("td", { text: a.type || "" }),
          S.el("td", { class: "small", text: (a.rules || []).map(function (r) { return r.operation; }).join(", ") || "—" }),
        ]);
      })));
    }
  }

  async function visitor(box) {
    var result = await S.api("GET", box.getAttribute("data-api"));
    box.innerHTML = "";
    if (result.status === 404 && result.data && /visitor/i.test(result.data.error || "")) {
      box.appendChild(S.el("div", { class: "empty small", text: "No profile for this visitor id." }));
      return;
    }
    if (!result.ok) { unavailable(box, result); return; }
    var v = result.data;
    var head = S.el("div", { class: "card-head" }, [S.el("div", {}, [
      S.el("h2", { text: "Visitor " + v.visitor_id }),
      S.el("p", { text: "Updated " + (v.updated_at || "—") }),
    ])]);
    if (box.getAttribute("data-can-edit") === "true") {
      var erase = S.el("button", { type: "button", class: "btn danger", text: "Erase this visitor…" });
      erase.addEventListener("click", async function () {
        var ok = await S.confirm("Erase visitor " + v.visitor_id + "? Their profile, stored events, traces and error records are deleted. This cannot be undone.", "Erase visitor");
        if (!ok) return;
        var gone = await S.api("DELETE", box.getAttribute("data-api"));
        if (!gone.ok) { S.toast((gone.data && gone.data.error) || "Could not erase.", "error"); return; }
        S.flashNext("Visitor " + v.visitor_id + " erased.");
        location.href = box.getAttribute("data-done-url");
      });
      head.appendChild(erase);
    }
    box.appendChild(head);
    var attrs = v.attributes || {};
    var body = S.el("div", { class: "card-body grid-2" });
    body.appendChild(S.el("div", {}, [S.el("h3", { text: "Attributes" }), table(["Name", "Value"], Object.keys(attrs).map(function (k) {
      return S.el("tr", {}, [S.el("td", {}, [S.el("code", { text: k })]), S.el("td", { class: "mono small", text: JSON.stringify(attrs[k]) })]);
    }))]));
    var side = S.el("div", {}, [
      S.el("h3", { text: "Badges" }), S.el("p", { text: (v.badges || []).join(", ") || "none" }),
      S.el("h3", { text: "Audiences" }),
      S.el("p", { text: Object.keys(v.audiences || {}).map(function (id) { return v.audiences[id].name; }).join(", ") || "none" }),
      S.el("h3", { text: "Current visit" }), S.el("pre", { text: JSON.stringify(v.current_visit, null, 2) }),
    ]);
    body.appendChild(side);
    box.appendChild(body);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-audience-list]").forEach(list);
    document.querySelectorAll("[data-visitor]").forEach(visitor);
  });
})();
