/* The PQL editor: a textarea with a highlighted layer behind it, line numbers, the server's
   diagnostics underlined in place, field completion and insertion from the field browser.
   Self-contained (no build step). The textarea stays the source of truth, so the form posts
   plain text and the page works without JavaScript. */
(function () {
  "use strict";

  var KEYWORDS = new Set([
    "and", "or", "not", "in", "notin", "like", "matches", "occurs", "select", "exists", "forall",
    "from", "where", "let", "over", "chain", "true", "false", "null", "if", "on", "between",
    "before", "after", "this", "last", "next", "now", "today", "yesterday", "tomorrow", "as",
    "sum", "average", "min", "max", "count", "WHAT", "WHEN", "COUNT", "WHERE"
  ]);
  var UNITS = /^(milli)?seconds?$|^minutes?$|^hours?$|^days?$|^weeks?$|^months?$|^years?$|^decades?$|^centur(y|ies)$|^millenn?i(um|a|ums)$/;
  // one path segment at a time, so that in a.b.startsWith( only the method is a function
  var TOKEN = /("(?:[^"\\\n]|\\.)*"?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|([\s\S])/g;

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function classify(match, text, end) {
    if (match[1] !== undefined) return "str";
    if (match[2] !== undefined) return "num";
    if (match[3] !== undefined) {
      var word = match[3];
      if (KEYWORDS.has(word) || KEYWORDS.has(word.toLowerCase()) || UNITS.test(word)) return "kw";
      if (/^\s*\(/.test(text.slice(end))) return "fn";
      return "field";
    }
    if (match[5] !== undefined && /[=!<>+\-*/%]/.test(match[5])) return "op";
    return "";
  }

  // Highlighted HTML for text, with the [start, end) ranges of problems wrapped in marks.
  function render(text, problems) {
    var cuts = new Set([0, text.length]);
    problems.forEach(function (p) { cuts.add(p.start); cuts.add(Math.max(p.end, p.start + 1)); });
    var spans = [];
    TOKEN.lastIndex = 0;
    var match;
    while ((match = TOKEN.exec(text)) !== null) {
      var start = match.index, end = start + match[0].length;
      var cls = classify(match, text, end);
      // split a token where a problem starts or ends so marks nest cleanly
      var pos = start;
      Array.from(cuts).filter(function (c) { return c > start && c < end; })
        .sort(function (a, b) { return a - b; })
        .concat([end]).forEach(function (cut) {
          spans.push({ start: pos, end: cut, cls: cls });
          pos = cut;
        });
    }
    var html = "";
    spans.forEach(function (span) {
      var piece = escapeHtml(text.slice(span.start, span.end));
      var inside = problems.filter(function (p) {
        var pend = Math.max(p.end, p.start + 1);
        return span.start >= p.start && span.end <= pend;
      });
      if (span.cls) piece = '<span class="tok-' + span.cls + '">' + piece + "</span>";
      if (inside.length) {
        var severity = inside.some(function (p) { return p.severity === "error"; }) ? "error" : "warning";
        piece = '<mark class="pql-mark pql-mark-' + severity + '">' + piece + "</mark>";
      }
      html += piece;
    });
    // an error just past the end of the text still needs something to underline
    problems.forEach(function (p) {
      if (p.start >= text.length) html += '<mark class="pql-mark pql-mark-' + p.severity + '"> </mark>';
    });
    return html + "\n";
  }

  function problemsOf(editor) {
    var list = [];
    var scope = document.getElementById(editor.dataset.diagnostics || "pql-diagnostics");
    if (!scope) return list;
    scope.querySelectorAll("[data-start]").forEach(function (item) {
      list.push({
        start: parseInt(item.dataset.start, 10),
        end: parseInt(item.dataset.end, 10),
        severity: item.dataset.severity || "error"
      });
    });
    return list;
  }

  function fieldsOf(editor) {
    var source = document.getElementById(editor.dataset.fields || "pql-fields");
    if (!source) return [];
    try { return JSON.parse(source.textContent); } catch (e) { return []; }
  }

  function insertAtCursor(textarea, text, replaceFrom) {
    var start = replaceFrom === undefined ? textarea.selectionStart : replaceFrom;
    var end = textarea.selectionEnd;
    textarea.setRangeText(text, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.focus();
  }

  function setup(editor) {
    if (editor.dataset.ready) return;
    editor.dataset.ready = "1";
    var textarea = editor.querySelector("textarea");
    var layer = editor.querySelector(".pql-highlight");
    var gutter = editor.querySelector(".pql-gutter");
    var popup = editor.querySelector(".pql-complete");
    var fields = fieldsOf(editor);
    var choices = [], chosen = 0, wordStart = 0;

    function paint() {
      var text = textarea.value;
      layer.innerHTML = render(text, problemsOf(editor));
      var lines = text.split("\n").length;
      var numbers = "";
      for (var i = 1; i <= lines; i++) numbers += i + "\n";
      gutter.textContent = numbers;
      layer.scrollTop = textarea.scrollTop;
      layer.scrollLeft = textarea.scrollLeft;
      gutter.scrollTop = textarea.scrollTop;
    }

    function currentWord() {
      var before = textarea.value.slice(0, textarea.selectionStart);
      var m = /[A-Za-z_][A-Za-z0-9_.]*$/.exec(before);
      return m ? { text: m[0], start: before.length - m[0].length } : null;
    }

    function closePopup() {
      popup.hidden = true;
      choices = [];
    }

    function openPopup(force) {
      var word = currentWord();
      if (!word && !force) return closePopup();
      var needle = word ? word.text.toLowerCase() : "";
      // a path typed after a variable (X.commerce…) completes event fields
      var dot = needle.indexOf(".");
      var variable = dot > 0 && /^[a-z]$/i.test(needle.slice(0, dot)) ? needle.slice(0, dot + 1) : "";
      var query = variable ? needle.slice(variable.length) : needle;
      choices = fields.filter(function (f) {
        if (variable && f.collection !== "xEvent") return false;
        return f.path.toLowerCase().indexOf(query) !== -1;
      }).sort(function (a, b) {
        var ap = a.path.toLowerCase().indexOf(query) === 0 ? 0 : 1;
        var bp = b.path.toLowerCase().indexOf(query) === 0 ? 0 : 1;
        return ap - bp || a.path.length - b.path.length;
      }).slice(0, 12);
      if (!choices.length || (!force && query.length < 2)) return closePopup();
      wordStart = word ? word.start + (variable ? variable.length : 0) : textarea.selectionStart;
      chosen = 0;
      popup.innerHTML = choices.map(function (f, i) {
        return '<li role="option" data-i="' + i + '"' + (i === 0 ? ' aria-selected="true"' : "") + ">" +
          '<span class="pql-complete-path">' + escapeHtml(f.path) + "</span>" +
          '<span class="pql-complete-type">' + escapeHtml(f.type) +
          (f.collection === "xEvent" ? " · event" : "") + "</span></li>";
      }).join("");
      popup.hidden = false;
    }

    function choose(i) {
      var f = choices[i];
      if (!f) return;
      insertAtCursor(textarea, f.path, wordStart);
      closePopup();
    }

    function highlightChoice() {
      popup.querySelectorAll("li").forEach(function (li, i) {
        li.setAttribute("aria-selected", i === chosen ? "true" : "false");
      });
    }

    textarea.addEventListener("input", function () { paint(); openPopup(false); });
    textarea.addEventListener("scroll", paint);
    textarea.addEventListener("blur", function () { setTimeout(closePopup, 150); });
    textarea.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        var run = document.querySelector(editor.dataset.runButton || "[data-pql-run]");
        if (run) run.click();
        return;
      }
      if (event.ctrlKey && event.key === " ") {
        event.preventDefault();
        openPopup(true);
        return;
      }
      if (popup.hidden) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        chosen = (chosen + (event.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
        highlightChoice();
      } else if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        choose(chosen);
      } else if (event.key === "Escape") {
        event.preventDefault();
        closePopup();
      }
    });
    popup.addEventListener("mousedown", function (event) {
      var li = event.target.closest("li");
      if (li) { event.preventDefault(); choose(parseInt(li.dataset.i, 10)); }
    });

    // the field browser and the function reference insert at the cursor
    document.querySelectorAll("[data-pql-insert]").forEach(function (button) {
      button.addEventListener("click", function () {
        insertAtCursor(textarea, button.dataset.pqlInsert);
      });
    });
    document.addEventListener("htmx:afterSwap", function (event) {
      var target = event.detail && event.detail.target;
      if (target && (target.id === (editor.dataset.diagnostics || "pql-diagnostics") ||
                     target.contains(document.getElementById(editor.dataset.diagnostics || "pql-diagnostics")))) {
        paint();
      }
    });
    paint();
  }

  // The field browser's search box filters its list in place.
  function setupFilters() {
    document.querySelectorAll("[data-filter-list]").forEach(function (input) {
      if (input.dataset.ready) return;
      input.dataset.ready = "1";
      var list = document.getElementById(input.dataset.filterList);
      input.addEventListener("input", function () {
        var needle = input.value.toLowerCase();
        list.querySelectorAll("[data-filter-text]").forEach(function (item) {
          item.hidden = needle && item.dataset.filterText.toLowerCase().indexOf(needle) === -1;
        });
      });
    });
  }

  // The profile drawer closes with its button, a click outside it, or Esc.
  function closeDrawers() {
    document.querySelectorAll(".drawer.open").forEach(function (drawer) {
      drawer.classList.remove("open");
      drawer.innerHTML = "";
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-drawer-close]") ||
        (event.target.classList && event.target.classList.contains("drawer"))) closeDrawers();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeDrawers();
  });

  function init() {
    document.querySelectorAll(".pql-editor").forEach(setup);
    setupFilters();
  }

  window.PQLEditor = { render: render, init: init };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
  document.addEventListener("htmx:load", init);
})();
