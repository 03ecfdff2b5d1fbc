// Nashra's console: the one script. A send's page updates itself without reloading, an
// alert in its undo window counts down, and a form marked data-confirm asks first. No
// framework, no build step.
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
          // A send that paused itself says why (the send guard).
          setField(root, "guard_text", p.guard_text || "");
          root.querySelectorAll("[data-guard]").forEach(function (el) { el.hidden = !p.guard_text; });
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

  // «عاجل»: an alert in its undo window counts down to its start (data-countdown: seconds
  // left when the page was made); at zero the page is loaded again and shows it sent. The
  // words are the page's (data-second, data-minute: a noun's forms one|two|few|many|hundreds,
  // from render/plural.rs); only Arabic's rule for picking one is written here.
  function countdowns() {
    var els = [].slice.call(document.querySelectorAll("[data-countdown]"));
    if (!els.length) { return; }
    var start = Date.now();
    var arabic = document.body.classList.contains("digits-arabic");
    function written(n) {
      var s = String(n);
      return arabic ? s.replace(/[0-9]/g, function (c) { return "٠١٢٣٤٥٦٧٨٩".charAt(+c); }) : s;
    }
    function count(n, forms) {
      var f = forms.split("|"), h = n % 100;
      if (n === 1) { return f[0]; }
      if (n === 2) { return f[1]; }
      return written(n) + " " + (h >= 3 && h <= 10 ? f[2] : h >= 11 && h <= 99 ? f[3] : f[4]);
    }
    function tick() {
      var gone = (Date.now() - start) / 1000, due = false;
      els.forEach(function (el) {
        var left = Math.ceil(+el.getAttribute("data-countdown") - gone);
        if (left <= 0) {
          due = true;
          if (el.hasAttribute("data-due")) { el.textContent = el.getAttribute("data-due"); }
        } else if (left > 120) {
          el.textContent = count(Math.ceil(left / 60), el.getAttribute("data-minute"));
        } else {
          el.textContent = count(left, el.getAttribute("data-second"));
        }
      });
      // Without the query: the message after «أرسل» has said its piece.
      if (due) { setTimeout(function () { window.location.replace(window.location.pathname); }, 1500); return; }
      setTimeout(tick, 250);
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
    countdowns();
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  });
})();
