// Nashra's console: the one script. A send's page updates itself without reloading, and a
// form marked data-confirm asks first. No framework, no build step.
(function () {
  "use strict";

  function setField(root, name, value) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = value;
    });
  }

  // A send's failures table is fetched again whenever the count of failures moves.
  function refreshFailures(failed) {
    var box = document.querySelector("[data-failures-url]");
    if (!box || box.getAttribute("data-failed") === String(failed)) { return; }
    box.setAttribute("data-failed", String(failed));
    fetch(box.getAttribute("data-failures-url"), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.text();
      })
      .then(function (html) { box.innerHTML = html; labelCells(); })
      .catch(function () { box.setAttribute("data-failed", ""); });
  }

  function follow(root) {
    var url = root.getAttribute("data-progress-url");
    var delay = 1000;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) { throw new Error(r.status); }
          return r.json();
        })
        .then(function (p) {
          ["status_label", "sent_text", "total_text", "failed_text", "pending_text", "rate_text", "eta_text"]
            .forEach(function (k) { setField(root, k, p[k]); });
          var badge = root.querySelector('[data-field="status_class"]');
          if (badge) { badge.className = "badge " + p.status; }
          var bar = root.querySelector('[data-field="bar"]');
          if (bar) {
            bar.setAttribute("aria-valuenow", String(p.percent));
            bar.firstElementChild.style.width = p.percent + "%";
          }
          root.querySelectorAll("[data-when]").forEach(function (el) {
            el.hidden = el.getAttribute("data-when").split(" ").indexOf(p.status) < 0;
          });
          root.setAttribute("data-status", p.status);
          refreshFailures(p.failed);
          delay = p.status === "sending" || p.status === "queued" ? 1000 : 5000;
          if (p.status !== "done" && p.status !== "cancelled") { setTimeout(tick, delay); }
        })
        .catch(function () { setTimeout(tick, 5000); });
    }
    tick();
  }

  // Each cell carries its column's name, for the phone layout's cards (console.css).
  function labelCells() {
    document.querySelectorAll("table").forEach(function (t) {
      var names = [].map.call(t.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      t.querySelectorAll("tbody tr").forEach(function (tr) {
        [].forEach.call(tr.children, function (td, i) {
          if (names[i]) { td.setAttribute("data-label", names[i]); }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    labelCells();
    document.querySelectorAll("[data-progress-url]").forEach(follow);
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  });
})();
