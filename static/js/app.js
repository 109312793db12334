// Small behaviours shared by every page. Pages work without this file.
(function () {
  "use strict";
  function wireToasts(root) {
    root.querySelectorAll(".toast").forEach(function (toast) {
      var close = toast.querySelector(".toast-close");
      if (close) close.addEventListener("click", function () { toast.remove(); });
      // Success and info disappear on their own; errors stay until dismissed.
      if (toast.hasAttribute("data-autohide")) setTimeout(function () { toast.remove(); }, 5000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wireToasts(document); });
  // "/" focuses the page's search field, unless the user is already typing somewhere.
  document.addEventListener("keydown", function (event) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) || document.activeElement.isContentEditable;
    if (event.key === "/" && !typing) {
      var search = document.querySelector("[data-search-shortcut]");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });
})();

// ==== Connections (issue 6): the sidebar's switcher submits itself when a choice is made ====
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var select = event.target.closest ? event.target.closest("select[data-autosubmit]") : null;
    if (select && select.form) select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit();
  });
})();
// ==== end Connections ====

// ==== Refusals (issue 14): a 400 that names where it belongs (HX-Retarget, e.g. a toast for a
// field that held a character the server refuses) is shown there; htmx swaps no 4xx by itself ====
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 400 && xhr.getResponseHeader("HX-Retarget")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("toasts")) {
      target.querySelectorAll(".toast").forEach(function (toast) {
        if (toast.dataset.wired) return;
        toast.dataset.wired = "1";
        var close = toast.querySelector(".toast-close");
        if (close) close.addEventListener("click", function () { toast.remove(); });
        if (toast.hasAttribute("data-autohide")) setTimeout(function () { toast.remove(); }, 5000);
      });
    }
  });
})();
// ==== end Refusals ====
