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
