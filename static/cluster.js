// Cluster page: maintenance buttons (confirm, POST JSON, report) and keeping the polled overview
// from replacing itself while the user is reading a confirm dialog. URLs come from the DOM.
"use strict";
(function () {
  function status(text, bad) {
    var el = document.getElementById("maint-status");
    if (!el) return;
    el.textContent = text;
    el.className = "maint-status banner " + (bad ? "error" : "info");
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest ? ev.target.closest("button.maint") : null;
    if (!btn) return;
    ev.preventDefault();
    var holder = btn.closest("[data-maintenance-url]") || document.querySelector("[data-maintenance-url]");
    if (!holder) return;
    var action = btn.getAttribute("data-action");
    var body = {};
    var member = btn.getAttribute("data-member");
    if (member) body.member = member;
    if (action === "compact") {
      var rev = parseInt((document.getElementById("compact-rev") || {}).value, 10);
      if (!(rev > 0)) { status("Enter the revision to compact to.", true); return; }
      body.revision = rev;
    }
    var question = btn.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    btn.disabled = true;
    status(action + " … (this can take a while on a large database)", false);
    fetch(holder.getAttribute("data-maintenance-url") + "/" + encodeURIComponent(action), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (json) {
        if (!resp.ok) throw new Error(json.error || resp.statusText);
        status(json.message || action + " done.", false);
        var overview = document.getElementById("overview");
        if (overview && window.htmx) window.htmx.trigger(overview, "every 3s");
      });
    }).catch(function (err) {
      status(action + " failed: " + err.message, true);
    }).finally(function () {
      btn.disabled = false;
    });
  });
})();
