/* The PQL editor: a textarea with a highlighted layer behind it, line numbers, the server's
   diagnostics underlined in place, completion at the caret (fields of the context the caret is
   in, saved segments inside inSegment("…")) and insertion from the field browser.
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

  function jsonData(id) {
    var source = document.getElementById(id);
    if (!source) return [];
    try { return JSON.parse(source.textContent) || []; } catch (e) { return []; }
  }

  // ---- Completion: what the caret is inside of -------------------------------------------
  // A context is where an unprefixed path is read from: {coll: "profile" | "xEvent", path}, the
  // fields under `path.` in that collection (arrays are transparent in field paths, so the
  // items of xEvent.productListItems are the event fields under "productListItems.").
  var EVENTS = "xEvent";
  var PROFILE_ROOT = { coll: "profile", path: "" };
  var EVENT_ROOT = { coll: EVENTS, path: "" };
  var CHAIN_CLAUSE = /^(WHAT|WHEN|COUNT|WHERE)$/;  // chain clauses are upper case (spec §6.13)
  var PATH_END = /((?:\^+\.)?[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*$/;
  var METHOD_END = /((?:\^+\.)?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\.\s*[A-Za-z_]\w*\s*$/;
  var BINDING = /\b([A-Za-z_]\w*)\s+from\s+((?:\^+\.)?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)/gi;
  var SEGMENT_ARG = /\binSegment\s*\(\s*(?:"((?:[^"\\\n]|\\.)*))?$/;

  // The text with the inside of every string blanked, so that brackets and words in strings
  // do not count (an unterminated string runs to the end of its line).
  function maskStrings(text) {
    return text.replace(/"((?:[^"\\\n]|\\.)*)("?)/g, function (all, inside, close) {
      return '"' + inside.replace(/[^\n]/g, " ") + close;
    });
  }

  function fieldPrefix(ctx) { return ctx.path ? ctx.path + "." : ""; }

  function Analyzer(text, fields) {
    this.masked = maskStrings(text);
    this.types = {};
    var types = this.types;
    fields.forEach(function (f) { types[f.collection + ":" + f.path] = f.type; });
    this.bindings = {};
    BINDING.lastIndex = 0;
    var m;
    while ((m = BINDING.exec(this.masked)) !== null) {
      (this.bindings[m[1]] = this.bindings[m[1]] || []).push({ at: m.index + m[0].length - m[2].length, expr: m[2] });
    }
  }

  // The variable's binding seen from pos: the nearest declaration before it, else the first after
  // it (`sum X.a over X from xEvent` uses X before declaring it).
  Analyzer.prototype.variable = function (name, pos, depth) {
    var list = this.bindings[name];
    if (!list) return null;
    var decl = null;
    list.forEach(function (d) { if (d.at <= pos) decl = d; });
    decl = decl || list[0];
    if (decl.ctx === undefined) {
      decl.ctx = null;  // while resolving: a variable declared over itself resolves to nothing
      decl.ctx = depth > 8 ? null : this.resolve(decl.expr, this.frames(decl.at, depth + 1), decl.at, depth + 1);
    }
    return decl.ctx;
  };

  // Whether a resolved path is a list whose items a filter or a method's argument reads.
  Analyzer.prototype.isList = function (ctx) {
    if (ctx.coll === EVENTS && !ctx.path) return true;
    return /^array/.test(this.types[ctx.coll + ":" + ctx.path] || "");
  };

  // Where a path written at pos leads: xEvent, a variable, ^ (one context up) or the context.
  Analyzer.prototype.resolve = function (text, frames, pos, depth) {
    var path = text.replace(/\s+/g, "");
    var contexts = frames.filter(function (f) { return f.switches; }).map(function (f) { return f.ctx; });
    var base = contexts[contexts.length - 1];
    var up = /^(\^+)\./.exec(path);
    if (up) {
      base = contexts[Math.max(0, contexts.length - 1 - up[1].length)];
      path = path.slice(up[0].length);
    }
    var parts = path.split(".").filter(Boolean);
    if (!up && parts[0] === EVENTS) {
      base = EVENT_ROOT;
      parts.shift();
    } else if (!up && parts.length && this.bindings[parts[0]]) {
      base = this.variable(parts[0], pos, depth || 0);
      if (!base) return null;
      parts.shift();
    }
    var rest = parts.join(".");
    return { coll: base.coll, path: base.path && rest ? base.path + "." + rest : base.path || rest };
  };

  // The open brackets before pos, innermost last, each with the context inside it.
  Analyzer.prototype.frames = function (pos, depth) {
    var masked = this.masked;
    var frames = [{ kind: "root", ctx: PROFILE_ROOT, switches: true, open: -1 }];
    var closedItems = null;  // the last closed [ … ] filter, for xEvent[…].sum(…)
    for (var i = 0; i < pos; i++) {
      var c = masked[i];
      if (c === "(" || c === "[") {
        frames.push(this.open(c, masked.slice(Math.max(0, i - 400), i), i, frames, closedItems, depth || 0));
      } else if ((c === ")" || c === "]") && frames.length > 1) {
        var frame = frames.pop();
        closedItems = frame.kind === "items" ? { end: i + 1, ctx: frame.ctx } : null;
      } else if (!/\s/.test(c) && c !== ".") {
        if (!/[A-Za-z0-9_]/.test(c) || !closedItems || i > closedItems.end + 64) closedItems = null;
      }
    }
    return frames;
  };

  Analyzer.prototype.open = function (bracket, before, at, frames, closedItems, depth) {
    var ctx = frames[frames.length - 1].ctx;
    function items(of) { return { kind: "items", ctx: of, switches: true, open: at }; }
    var afterFilter = closedItems && /\]\s*(\.\s*[A-Za-z_]\w*\s*)?$/.test(before);
    if (bracket === "[") {
      var path = PATH_END.exec(before);
      if (path && !/\b(in|notin|notIn)\s*$/.test(before)) {
        var list = this.resolve(path[1], frames, at, depth);
        if (list && this.isList(list)) return items(list);
      }
      if (afterFilter && /\]\s*$/.test(before)) return items(closedItems.ctx);  // xEvent[…][…]
      return { kind: "list", ctx: ctx, open: at };
    }
    var word = (/([A-Za-z_]\w*)\s*$/.exec(before) || [])[1] || "";
    var method = METHOD_END.exec(before);
    if (CHAIN_CLAUSE.test(word) && !method) {
      // WHAT(…), WHERE(…): one event of the chain's list (its first argument, xEvent in practice)
      for (var j = frames.length - 1; j >= 0; j--) {
        if (frames[j].kind === "chain") {
          var first = this.masked.slice(frames[j].open + 1).split(",")[0];
          var of = PATH_END.test(first) ? this.resolve(first.trim(), frames.slice(0, j + 1), at, depth) : null;
          return items(of && this.isList(of) ? of : EVENT_ROOT);
        }
      }
      return items(EVENT_ROOT);
    }
    if (/^chain$/i.test(word) && !method) return { kind: "chain", ctx: ctx, open: at };
    if (word === "inSegment" && !method) return { kind: "segment", ctx: ctx, open: at };
    // a method on a list (exists, filter, sum, …) reads its items in its arguments
    if (afterFilter && /\.\s*[A-Za-z_]\w*\s*$/.test(before)) return items(closedItems.ctx);
    if (method) {
      var receiver = this.resolve(method[1], frames, at, depth);
      if (receiver && this.isList(receiver)) return items(receiver);
    }
    return { kind: "group", ctx: ctx, open: at };
  };

  // What Ctrl+Space (or typing) at pos offers: fields of a context, or segments.
  function completionAt(text, pos, fields, segments) {
    var raw = text.slice(0, pos);
    var seg = SEGMENT_ARG.exec(raw);
    if (seg) {
      var quoted = seg[1] !== undefined, typed = quoted ? seg[1] : "";
      var needle = typed.toLowerCase();
      var found = segments.filter(function (s) {
        return !needle || s.name.toLowerCase().indexOf(needle) !== -1 || s.id.toLowerCase().indexOf(needle) === 0;
      }).sort(function (a, b) {
        return rank(a.name, needle) - rank(b.name, needle) || a.name.localeCompare(b.name);
      });
      var after = text.slice(pos);
      var from = pos - typed.length, to = pos, tail = "";
      if (quoted) {
        var rest = /^[^"\n]*"/.exec(after);
        if (rest) to = pos + rest[0].length;  // replace up to and with the closing quote
        else if (!/^\s*\)/.test(after)) tail = ")";
      } else if (!/^\s*\)/.test(after)) {
        tail = ")";
      }
      return {
        kind: "segment", typed: typed, from: from, to: to,
        title: "Saved segments · inserts the id",
        empty: segments.length ? "No saved segment's name contains “" + typed + "”" : "No other saved segments in this sandbox",
        choices: found.map(function (s) {
          return { label: s.name, detail: shortId(s.id), title: s.id, match: typed,
                   insert: (quoted ? "" : '"') + s.id + '"' + tail };
        })
      };
    }
    var analyzer = new Analyzer(text, fields);
    if (inString(raw)) return null;
    var masked = analyzer.masked.slice(0, pos);
    var frames = analyzer.frames(pos, 0);
    var word = /(?:\^+\.)?[A-Za-z_]\w*(?:\.\w*)*$/.exec(masked);
    if (word && /[\w.]$/.test(masked.slice(0, word.index))) word = null;  // 1.5, or a method after ]
    if (!word && /[\w.]$/.test(masked)) return null;
    var wordText = word ? word[0] : "";
    var start = word ? word.index : pos;
    var ctx = frames[frames.length - 1].ctx;
    var rel = wordText, relStart = start, head = "";
    var dot = wordText.lastIndexOf(".");
    if (dot !== -1) {
      var first = wordText.split(".")[0];
      if (/^\^/.test(wordText) || first === EVENTS || analyzer.bindings[first]) {
        head = /^\^/.test(wordText) ? wordText.slice(0, wordText.indexOf(".") + 1) : first + ".";
        var base = analyzer.resolve(head, frames, pos, 0);
        if (!base) return null;
        ctx = base;
        rel = wordText.slice(head.length);
        relStart = start + head.length;
      }
    }
    var prefix = fieldPrefix(ctx);
    var query = rel.toLowerCase();
    var choices = fields.filter(function (f) {
      if (f.collection !== ctx.coll || f.path.indexOf(prefix) !== 0 || f.path.length === prefix.length) return false;
      return f.path.slice(prefix.length).toLowerCase().indexOf(query) !== -1;
    }).map(function (f) {
      var path = f.path.slice(prefix.length);
      return { label: path, detail: f.type, match: rel, insert: path };  // the heading names the collection
    });
    if (!head && ctx === PROFILE_ROOT && query && EVENTS.toLowerCase().indexOf(query) === 0) {
      choices.push({ label: EVENTS, detail: "the profile's events", match: rel, insert: EVENTS });
    }
    choices.sort(function (a, b) {
      if (!query) return a.label.localeCompare(b.label);
      return rank(a.label, query) - rank(b.label, query) || a.label.length - b.label.length ||
        a.label.localeCompare(b.label);
    });
    var where = ctx.path ? ctx.path + " items" : "";
    return {
      kind: "field", typed: rel, from: relStart, to: pos, dotted: /\.$/.test(wordText),
      title: (ctx.coll === EVENTS ? "Event fields" : "Profile fields") + (where ? " · " + where : ""),
      empty: query ? "No " + (ctx.coll === EVENTS ? "event" : "profile") + " field matches “" + rel + "”" :
        "No fields here",
      choices: choices.slice(0, 100)
    };
  }

  // Whether raw (the text before the caret) ends inside an unterminated string.
  function inString(raw) {
    var re = /"((?:[^"\\\n]|\\.)*)("?)/g, m, last = null;
    while ((m = re.exec(raw)) !== null) last = m;
    return !!last && !last[2] && last.index + last[0].length === raw.length;
  }

  // 0: starts with the needle, 1: a path step starts with it, 2: contains it
  function rank(label, needle) {
    var lower = label.toLowerCase();
    if (!needle || lower.indexOf(needle) === 0) return 0;
    return lower.indexOf("." + needle) !== -1 || lower.indexOf(" " + needle) !== -1 ? 1 : 2;
  }

  function shortId(id) { return id.length > 12 ? id.slice(0, 8) + "…" : id; }

  // ---- Completion: the list at the caret -------------------------------------------------
  var popupCount = 0;

  // Where the character at index sits on screen: a hidden copy of the textarea, laid out the
  // same way, measures it (textareas do not expose caret coordinates).
  function caretRect(textarea, index) {
    var style = getComputedStyle(textarea);
    var mirror = document.createElement("div");
    ["fontFamily", "fontSize", "fontWeight", "fontStyle", "lineHeight", "letterSpacing", "tabSize",
     "paddingTop", "paddingRight", "paddingBottom", "paddingLeft", "textTransform", "wordSpacing",
     "whiteSpace", "overflowWrap", "wordBreak", "textIndent"].forEach(function (name) {
      mirror.style[name] = style[name];
    });
    mirror.style.position = "absolute";
    mirror.style.visibility = "hidden";
    mirror.style.top = "0";
    mirror.style.left = "-10000px";
    mirror.style.boxSizing = "content-box";
    mirror.style.border = "0";
    // clientWidth leaves out the scrollbar, as the textarea's own line breaking does
    mirror.style.width = (textarea.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)) + "px";
    mirror.textContent = textarea.value.slice(0, index);
    var marker = document.createElement("span");
    marker.textContent = textarea.value.slice(index, index + 1).replace("\n", "") || "\u200b";
    mirror.appendChild(marker);
    document.body.appendChild(mirror);
    var origin = mirror.getBoundingClientRect(), spot = marker.getBoundingClientRect();
    var box = textarea.getBoundingClientRect();
    var lineHeight = parseFloat(style.lineHeight) || spot.height;
    document.body.removeChild(mirror);
    var left = box.left + textarea.clientLeft + (spot.left - origin.left) - textarea.scrollLeft;
    var top = box.top + textarea.clientTop + (spot.top - origin.top) - textarea.scrollTop;
    return { left: left, top: top, bottom: top + lineHeight };
  }

  function markMatch(label, match) {
    var at = match ? label.toLowerCase().indexOf(match.toLowerCase()) : -1;
    if (at === -1) return escapeHtml(label);
    return escapeHtml(label.slice(0, at)) + "<strong>" + escapeHtml(label.slice(at, at + match.length)) +
      "</strong>" + escapeHtml(label.slice(at + match.length));
  }

  function Completion(textarea, fields, segments) {
    var id = "pql-complete-" + (++popupCount);
    var popup = document.createElement("div");
    popup.className = "pql-complete";
    popup.id = id;
    popup.hidden = true;
    popup.setAttribute("data-testid", "pql-complete");
    popup.innerHTML = '<div class="pql-complete-head" id="' + id + '-head"></div>' +
      '<ul class="pql-complete-list" role="listbox" id="' + id + '-list" aria-labelledby="' + id + '-head"></ul>' +
      '<div class="pql-complete-foot" aria-hidden="true"><kbd>↑</kbd><kbd>↓</kbd> choose · ' +
      "<kbd>Enter</kbd> insert · <kbd>Esc</kbd> close</div>";
    // On <body>, position: fixed: no overflow container of the page can clip it.
    document.body.appendChild(popup);
    var head = popup.firstChild, list = popup.querySelector("ul");
    var state = null, active = 0;
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-haspopup", "listbox");

    function isOpen() { return !popup.hidden; }

    function close() {
      popup.hidden = true;
      state = null;
      textarea.removeAttribute("aria-controls");
      textarea.removeAttribute("aria-activedescendant");
    }

    function setActive(i) {
      var options = list.querySelectorAll("[role=option]");
      if (!options.length) return;
      active = (i + options.length) % options.length;
      options.forEach(function (li, n) { li.setAttribute("aria-selected", n === active ? "true" : "false"); });
      var li = options[active];
      textarea.setAttribute("aria-activedescendant", li.id);
      // keep the active option in view without scrolling anything but the list
      if (li.offsetTop < list.scrollTop) list.scrollTop = li.offsetTop;
      else if (li.offsetTop + li.offsetHeight > list.scrollTop + list.clientHeight) {
        list.scrollTop = li.offsetTop + li.offsetHeight - list.clientHeight;
      }
    }

    // Next to the caret, inside the viewport: below the line, or above it when there is more
    // room there; moved left when it would cross the right edge.
    function place() {
      if (!state) return;
      var at = caretRect(textarea, state.from);
      var box = textarea.getBoundingClientRect();
      var viewWidth = document.documentElement.clientWidth, viewHeight = window.innerHeight;
      if (at.bottom < box.top + 2 || at.top > box.bottom - 2 || at.bottom < 0 || at.top > viewHeight) {
        close();  // the caret scrolled out of sight: a list pointing at nothing helps no one
        return;
      }
      var margin = 8, gap = 4;
      popup.style.maxHeight = "";
      popup.style.left = "0px";
      popup.style.top = "0px";
      var below = viewHeight - at.bottom - gap - margin, above = at.top - gap - margin;
      var height = popup.offsetHeight;
      var up = height > below && above > below;
      var room = up ? above : below;
      if (height > room) {
        popup.style.maxHeight = Math.max(room, 60) + "px";
        height = popup.offsetHeight;
      }
      var top = up ? at.top - gap - height : at.bottom + gap;
      var width = popup.offsetWidth;
      var left = Math.min(at.left - 9, viewWidth - margin - width);  // 9: the option's inset
      popup.style.left = Math.max(margin, left) + "px";
      popup.style.top = Math.max(margin, top) + "px";
      popup.dataset.placement = up ? "above" : "below";
    }

    function open(force) {
      var pos = textarea.selectionStart;
      if (pos !== textarea.selectionEnd) return close();
      var found = completionAt(textarea.value, pos, fields, segments);
      if (!found) return close();
      if (!force) {
        // typing opens it only where it helps: two letters of a field, a dot after a path, or
        // anything inside inSegment("…")
        var quoted = found.kind === "segment" && /"[^"]*$/.test(textarea.value.slice(0, pos));
        var wanted = found.kind === "field" ? found.typed.length >= 2 || (found.dotted && found.choices.length) : quoted;
        if (!wanted || (found.kind === "field" && !found.choices.length)) return close();
        // the word is complete: nothing more to offer
        if (found.choices.length === 1 && found.choices[0].insert === found.typed) return close();
      }
      state = found;
      head.textContent = found.title;
      list.innerHTML = found.choices.length ? found.choices.map(function (choice, i) {
        return '<li role="option" class="is-' + found.kind + '" id="' + id + "-" + i + '" data-i="' + i + '" aria-selected="false"' +
          (choice.title ? ' title="' + escapeHtml(choice.title).replace(/"/g, "&quot;") + '"' : "") + ">" +
          '<span class="pql-complete-label">' + markMatch(choice.label, choice.match) + "</span>" +
          '<span class="pql-complete-detail">' + escapeHtml(choice.detail) + "</span></li>";
      }).join("") : '<li class="pql-complete-empty" role="presentation">' + escapeHtml(found.empty) + "</li>";
      popup.hidden = false;
      textarea.setAttribute("aria-controls", list.id);
      list.scrollTop = 0;
      setActive(0);
      if (!found.choices.length) textarea.removeAttribute("aria-activedescendant");
      place();
    }

    function choose(i) {
      var choice = state && state.choices[i];
      if (!choice) return;
      var from = state.from, to = Math.max(state.to, textarea.selectionEnd);
      close();
      textarea.focus();
      textarea.setRangeText(choice.insert, from, to, "end");
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
      close();  // the input event may have reopened it on the inserted word
    }

    // Returns true when the key was the list's.
    function keydown(event) {
      if (event.ctrlKey && (event.key === " " || event.code === "Space")) {
        event.preventDefault();
        open(true);
        return true;
      }
      if (!isOpen()) return false;
      var count = state.choices.length;
      if ((event.key === "ArrowDown" || event.key === "ArrowUp") && count) {
        event.preventDefault();
        setActive(active + (event.key === "ArrowDown" ? 1 : -1));
        return true;
      }
      if ((event.key === "PageDown" || event.key === "PageUp") && count) {
        event.preventDefault();
        setActive(Math.max(0, Math.min(count - 1, active + (event.key === "PageDown" ? 8 : -8))));
        return true;
      }
      if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.ctrlKey && !event.metaKey) {
        var choice = state.choices[active];
        if (!choice || choice.insert === state.typed) { close(); return false; }  // a new line, as usual
        event.preventDefault();
        choose(active);
        return true;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        close();
        return true;
      }
      if (/^(ArrowLeft|ArrowRight|Home|End)$/.test(event.key)) close();
      return false;
    }

    popup.addEventListener("mousedown", function (event) {
      event.preventDefault();  // the textarea keeps the focus (and its caret)
      var li = event.target.closest("[role=option]");
      if (li) choose(parseInt(li.dataset.i, 10));
    });
    popup.addEventListener("mousemove", function (event) {
      var li = event.target.closest("[role=option]");
      if (li && parseInt(li.dataset.i, 10) !== active) setActive(parseInt(li.dataset.i, 10));
    });
    textarea.addEventListener("blur", close);
    textarea.addEventListener("mousedown", close);
    textarea.addEventListener("scroll", place);
    // the page (or any box around the editor) scrolling moves the caret: follow it
    window.addEventListener("scroll", function (event) {
      if (isOpen() && !popup.contains(event.target)) place();
    }, true);
    window.addEventListener("resize", place);

    return { open: open, close: close, keydown: keydown, isOpen: isOpen, popup: popup };
  }

  function insertAtCursor(textarea, text) {
    textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.focus();
  }

  function setup(editor) {
    if (editor.dataset.ready) return;
    editor.dataset.ready = "1";
    var textarea = editor.querySelector("textarea");
    var layer = editor.querySelector(".pql-highlight");
    var gutter = editor.querySelector(".pql-gutter");
    var completion = Completion(textarea, jsonData(editor.dataset.fields || "pql-fields"),
                                jsonData(editor.dataset.segments || "pql-segments"));

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

    textarea.addEventListener("input", function () { paint(); completion.open(false); });
    textarea.addEventListener("scroll", paint);
    textarea.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        completion.close();
        var run = document.querySelector(editor.dataset.runButton || "[data-pql-run]");
        if (run) run.click();
        return;
      }
      completion.keydown(event);
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

  // Copy buttons ([data-copy] names the element whose text they copy: the segment's id). They
  // start hidden, since without this script they would do nothing.
  function copyText(text, source) {
    function bySelection() {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      return ok;  // when it fails the text stays selected, ready for Ctrl+C
    }
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, bySelection);
    }
    return Promise.resolve(bySelection());
  }

  function setupCopy() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      if (button.dataset.ready) return;
      button.dataset.ready = "1";
      button.hidden = false;
      var label = button.querySelector(".segment-id-copy-text") || button;
      var status = button.parentNode.querySelector("[data-copy-status]");
      var timer = null;
      button.addEventListener("click", function () {
        var source = document.querySelector(button.dataset.copy);
        if (!source) return;
        copyText(source.textContent.trim(), source).then(function (ok) {
          label.textContent = ok ? "Copied" : "Press Ctrl+C";
          button.classList.toggle("is-copied", ok);
          if (status) status.textContent = ok ? "The id is copied to the clipboard." : "The id is selected: press Ctrl+C to copy it.";
          clearTimeout(timer);
          timer = setTimeout(function () {
            label.textContent = "Copy";
            button.classList.remove("is-copied");
            if (status) status.textContent = "";
          }, 2000);
        });
      });
    });
  }

  function init() {
    document.querySelectorAll(".pql-editor").forEach(setup);
    setupFilters();
    setupCopy();
  }

  window.PQLEditor = { render: render, init: init, completionAt: completionAt };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
  document.addEventListener("htmx:load", init);
})();
