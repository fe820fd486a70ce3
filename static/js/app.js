// tikting's own scripts. htmx is loaded before this file; page scripts (SortableJS) after it.
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function toast(message, kind) {
    var el = document.getElementById("tk-toast");
    if (!el || !window.bootstrap) {
      if (kind === "danger") window.alert(message);
      return;
    }
    el.querySelector(".toast-body").textContent = message;
    el.classList.remove("text-bg-success", "text-bg-danger");
    el.classList.add(kind === "danger" ? "text-bg-danger" : "text-bg-success");
    window.bootstrap.Toast.getOrCreateInstance(el).show();
  }

  // A dismissible alert at the top of the page (one per id: shown again, it is replaced).
  function notice(id, kind, text) {
    var main = document.querySelector("main");
    if (!main) return;
    var alert = document.getElementById(id) || document.createElement("div");
    alert.id = id;
    alert.className = "alert alert-" + kind + " alert-dismissible";
    alert.setAttribute("role", kind === "danger" ? "alert" : "status");
    alert.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", "Close");
    alert.appendChild(close);
    if (!alert.parentNode) main.insertBefore(alert, main.firstChild);
  }

  // Reload the list's table in place (same filters, sort and page).
  function reloadResults() {
    if (window.htmx && document.getElementById("results")) {
      window.htmx.ajax("GET", window.location.href, { target: "#results", swap: "innerHTML" });
    }
  }

  // --- Drag-and-drop ranking of the open backlog (managers, list sorted by rank) -------------
  function initRanking(root) {
    if (!window.Sortable) return;
    root.querySelectorAll("tbody[data-rank-url]").forEach(function (tbody) {
      if (tbody.dataset.sortableReady) return;
      tbody.dataset.sortableReady = "1";
      window.Sortable.create(tbody, {
        handle: ".tk-grip",
        animation: 150,
        ghostClass: "tk-drag-ghost",
        onEnd: function (event) {
          if (event.oldIndex === event.newIndex) return;
          var body = new URLSearchParams();
          tbody.querySelectorAll("tr[data-id]").forEach(function (row) {
            body.append("ids", row.dataset.id);
          });
          body.append("page", tbody.dataset.page || "1");
          tbody.classList.add("tk-saving");
          fetch(tbody.dataset.rankUrl, {
            method: "POST",
            headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
            body: body.toString(),
            credentials: "same-origin",
          })
            .then(function (response) {
              return response
                .json()
                .catch(function () {
                  return { error: "The order could not be saved (HTTP " + response.status + ")." };
                })
                .then(function (data) {
                  if (!response.ok) throw new Error(data.error || "The order could not be saved.");
                  toast(data.message || "Backlog order saved.", "success");
                });
            })
            .catch(function (error) {
              toast(error.message, "danger");
            })
            .finally(reloadResults);
        },
      });
    });
  }

  // --- Impact / effort sliders with the live quadrant ---------------------------------------
  var QUADRANTS = {
    quick_win: ["Quick win", "High impact for little effort: usually done first."],
    major_project: ["Major project", "High impact, high effort: plan it and protect capacity."],
    fill_in: ["Fill-in", "Low impact, low effort: when there is spare capacity."],
    thankless: ["Thankless", "Low impact for high effort: worth questioning."],
  };
  var HIGH = 3; // choices.HIGH_RATING

  function quadrantFor(impact, effort) {
    var hi = impact >= HIGH, he = effort >= HIGH;
    if (hi && !he) return "quick_win";
    if (hi && he) return "major_project";
    if (!hi && !he) return "fill_in";
    return "thankless";
  }

  function initQuadrantPreview(root) {
    root.querySelectorAll("[data-quadrant-preview]").forEach(function (box) {
      if (box.dataset.previewReady) return;
      box.dataset.previewReady = "1";
      var form = box.closest("form") || box;
      var impact = form.querySelector("input[name=impact]");
      var effort = form.querySelector("input[name=effort]");
      if (!impact || !effort) return;
      function update() {
        var i = parseInt(impact.value, 10) || 3, e = parseInt(effort.value, 10) || 3;
        var q = quadrantFor(i, e);
        box.querySelectorAll("[data-rating-for]").forEach(function (out) {
          var input = form.querySelector("input[name=" + out.dataset.ratingFor + "]");
          if (input) out.textContent = input.value;
        });
        var badge = box.querySelector("[data-quadrant-badge]");
        badge.className = "badge tk-quadrant badge-" + q;
        badge.textContent = QUADRANTS[q][0];
        box.querySelector("[data-quadrant-score]").textContent = i * (6 - e);
        box.querySelector("[data-quadrant-hint]").textContent = QUADRANTS[q][1];
      }
      impact.addEventListener("input", update);
      effort.addEventListener("input", update);
      update();
    });
  }

  // --- Board: the Deferred / Closed / Rejected columns start collapsed ----------------------
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-board-toggle]");
    if (!toggle) return;
    var column = toggle.closest("[data-board-tail]");
    var collapsed = column.classList.toggle("is-collapsed");
    toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
  });

  // --- Attachments: drop files on the panel, or choose them; the panel comes back in place ----
  // Without this script the form posts normally and the page comes back (tikting/attachments).
  function sendAttachments(form, files) {
    var body = new FormData(form);
    if (files) {
      body.delete("file");
      Array.prototype.forEach.call(files, function (file) { body.append("file", file); });
    }
    var panel = form.closest("[data-attachments]");
    panel.classList.add("tk-saving");
    return fetch(form.action, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.text().then(function (html) {
          if (response.status === 413) throw new Error(HTTP_ERRORS[413]);
          if (!response.ok && response.status !== 400) throw new Error(HTTP_ERRORS[response.status] || "The file could not be attached (HTTP " + response.status + ").");
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.firstElementChild;
          panel.replaceWith(fresh);
          labelCells(fresh);
        });
      })
      .catch(function (error) {
        panel.classList.remove("tk-saving");
        toast(error.message, "danger");
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-attach-form], form[data-attach-remove]");
    if (!form || event.defaultPrevented) return;
    event.preventDefault();
    if (form.dataset.attachConfirm && !window.confirm(form.dataset.attachConfirm)) return;
    if (form.matches("[data-attach-form]") && !form.querySelector("input[type=file]").files.length) {
      toast("Choose a file to attach.", "danger");
      return;
    }
    sendAttachments(form, null);
  });
  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var zone = event.target.closest && event.target.closest("[data-attach-drop]");
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("is-over");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && event.target.closest("[data-attach-drop]");
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("is-over");
  });
  document.addEventListener("drop", function (event) {
    var zone = event.target.closest && event.target.closest("[data-attach-drop]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("is-over");
    if (event.dataTransfer && event.dataTransfer.files.length) sendAttachments(zone.closest("form"), event.dataTransfer.files);
  });

  // --- Saving a view: the list's filters as they are now (htmx keeps the address bar current) --
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-saved-views] form");
    var query = form && form.querySelector("[data-saved-query]");
    if (query) query.value = window.location.search.replace(/^\?/, "");
  });

  // --- Selecting rows for bulk actions: "select all on this page", the count in the bar ---------
  function bulkCount() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var rows = document.querySelectorAll("[data-select-row]");
    var chosen = document.querySelectorAll("[data-select-row]:checked").length;
    var count = form.querySelector("[data-bulk-count]");
    if (count) count.textContent = chosen + " selected";
    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      all.checked = rows.length > 0 && chosen === rows.length;
      all.indeterminate = chosen > 0 && chosen < rows.length;
    });
    if (chosen && !form.dataset.opened) {
      form.dataset.opened = "1";
      form.querySelector("[data-bulk-box]").open = true;
    }
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll("[data-select-row]").forEach(function (box) { box.checked = event.target.checked; });
    }
    if (event.target.matches("[data-select-all], [data-select-row]")) bulkCount();
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-bulk]");
    if (!form) return;
    if (!document.querySelector("[data-select-row]:checked")) {
      event.preventDefault();
      toast("Select at least one row first.", "danger");
    }
  });

  // --- Tables sorted in the page: <table data-tk-sort>, a button in each header ---------------
  // Numbers sort as numbers, "—" (no value) last; a second click reverses; the first order (the
  // server's) comes back on the third.
  function cellValue(row, index) {
    var text = (row.cells[index] ? row.cells[index].textContent : "").trim();
    var number = parseFloat(text.replace(/,/g, ""));
    return { text: text, number: /^-?[\d,]*\.?\d+$/.test(text) ? number : null, empty: text === "" || text === "—" };
  }

  function initTableSort(root) {
    root.querySelectorAll("table[data-tk-sort]").forEach(function (table) {
      if (table.dataset.tkSortReady) return;
      table.dataset.tkSortReady = "1";
      var body = table.tBodies[0];
      Array.prototype.forEach.call(body.rows, function (row, i) { row.dataset.tkOrder = i; });
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "tk-sort-button";
        button.textContent = th.textContent;
        th.textContent = "";
        th.appendChild(button);
        button.addEventListener("click", function () {
          var next = { none: "ascending", ascending: "descending", descending: "none" }[th.getAttribute("aria-sort") || "none"];
          Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) { other.removeAttribute("aria-sort"); });
          if (next !== "none") th.setAttribute("aria-sort", next);
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            if (next === "none") return a.dataset.tkOrder - b.dataset.tkOrder;
            var x = cellValue(a, index), y = cellValue(b, index);
            if (x.empty !== y.empty) return x.empty ? 1 : -1; // no value: last either way
            var order = x.number !== null && y.number !== null ? x.number - y.number : x.text.localeCompare(y.text);
            return next === "ascending" ? order : -order;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  // --- In place of inline handlers (the Content-Security-Policy allows none) ------------------
  // <button data-print>: print the page. <form data-confirm="…">: ask before submitting.
  // <input data-select-on-focus>: select the text. <button data-copy-from="ID">: copy that field.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
    var copy = event.target.closest("[data-copy-from]");
    if (copy) {
      var field = document.getElementById(copy.dataset.copyFrom);
      field.select();
      navigator.clipboard.writeText(field.value).then(function () {
        copy.innerHTML = '<i class="bi bi-check-lg"></i> Copied';
      });
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });

  // --- What the user typed survives a session that ended (tikting/core/middleware.py) -----------
  // A request without a session goes to the login page with `next` = this page: an htmx request
  // answers 401 with HX-Redirect, a posted form is redirected. Before either, the texts typed on
  // the page are kept in sessionStorage, keyed by page and field; back on the page after signing
  // in, they are put back into the (empty) fields. A form posted normally is kept as "pending":
  // the login page confirms it (the post was refused), any other page drops it (it went through).
  var DRAFTS = "tk-drafts";
  var DRAFT_FIELDS = "textarea, input[type=text], input[type=number], input[type=date], input[type=datetime-local]";

  function draftKey(field) {
    var form = field.form;
    var action = form ? form.getAttribute("hx-post") || form.getAttribute("action") || "" : "";
    return action + "|" + (field.name || field.id);
  }

  function readDrafts() {
    try {
      return JSON.parse(window.sessionStorage.getItem(DRAFTS) || "null");
    } catch (e) {
      return null;
    }
  }

  function keepDrafts(state) {
    var fields = {};
    document.querySelectorAll(DRAFT_FIELDS).forEach(function (field) {
      if (!field.name || field.closest("[data-no-draft]") || field.value === field.defaultValue) return;
      fields[draftKey(field)] = field.value;
    });
    if (!Object.keys(fields).length) return;
    try {
      window.sessionStorage.setItem(DRAFTS, JSON.stringify({ page: window.location.pathname, state: state, fields: fields }));
    } catch (e) { /* storage full or disabled: nothing kept */ }
  }

  function restoreDrafts() {
    var drafts = readDrafts();
    if (!drafts) return;
    var login = document.body.classList.contains("tk-login");
    if (login) {
      if (drafts.state === "pending") drafts.state = "kept";
      window.sessionStorage.setItem(DRAFTS, JSON.stringify(drafts));
      var note = document.getElementById("tk-drafts-note");
      if (note && drafts.state === "kept") note.hidden = false;
      return;
    }
    if (drafts.state !== "kept" || drafts.page !== window.location.pathname) {
      if (drafts.state === "pending") window.sessionStorage.removeItem(DRAFTS); // the post went through
      return;
    }
    var restored = 0;
    document.querySelectorAll(DRAFT_FIELDS).forEach(function (field) {
      var value = drafts.fields[draftKey(field)];
      if (value === undefined || field.value) return;
      field.value = value;
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.classList.add("tk-restored");
      restored += 1;
      delete drafts.fields[draftKey(field)];
    });
    window.sessionStorage.removeItem(DRAFTS);
    if (restored) {
      notice("tk-drafts-restored", "info", "What you typed before signing in again is back in the form: check it and send it again.");
    }
  }

  // htmx: a 401 (the session ended) is followed by HX-Redirect to the login page; keep the texts.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 401) keepDrafts("kept");
  });
  // A form posted the ordinary way: kept until the next page says whether it went through.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("hx-post") || (form.method || "").toLowerCase() !== "post") return;
    if (document.body.classList.contains("tk-login")) return;
    keepDrafts("pending");
  });

  // --- An htmx request refused or failed (403, 404, 500 …): say so above the page --------------
  // The server answers these in plain text (tikting/core/views.py); htmx swaps nothing on an error.
  // The item page shows its refusals in place (item.js); 401, 409 and 422 are handled elsewhere.
  var HTTP_ERRORS = {
    403: "You may not do this.",
    404: "This no longer exists: reload the page.",
    413: "What you sent is too large.",
    429: "Too many attempts: wait a moment and try again.",
  };
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || [401, 409, 422].indexOf(xhr.status) >= 0) return;
    if (xhr.status === 403 && document.getElementById("item-flash")) return;
    var plain = (xhr.getResponseHeader("Content-Type") || "").indexOf("text/plain") === 0;
    var text = plain && xhr.responseText ? xhr.responseText : HTTP_ERRORS[xhr.status] ||
      "Something went wrong on our side (HTTP " + xhr.status + "): try again in a moment.";
    notice("tk-htmx-error", "danger", text);
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached: check the connection and try again.", "danger");
  });

  // --- Tables on phones: each row a card, each cell labelled with its column (app.css) ---------
  // The label is the column header's text (a cell may set its own data-label, "" for none); the
  // row's name (.tk-col-title) and empty cells go without.
  function labelCells(root) {
    var scope = Array.prototype.slice.call(root.querySelectorAll(".table-responsive > table, table.tk-stack, table.table-tk"));
    var around = root.closest && root.closest("table"); // a row swapped in by htmx
    if (around) scope.push(around);
    scope.forEach(function (table) {
      var head = table.tHead && table.tHead.rows[0];
      if (!head) return;
      var labels = [];
      Array.prototype.forEach.call(head.cells, function (th) {
        for (var i = 0; i < (th.colSpan || 1); i++) labels.push(th.textContent.replace(/\s+/g, " ").trim());
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (!cell.hasAttribute("data-label") && (cell.colSpan || 1) === 1) {
              var blank = !cell.textContent.trim() && !cell.querySelector("input, select, button, canvas, img, svg");
              cell.setAttribute("data-label", blank || cell.classList.contains("tk-col-title") ? "" : labels[column] || "");
            }
            column += cell.colSpan || 1;
          });
        });
      });
    });
  }

  // @mentions: in a textarea marked data-mentions, typing "@" and a few letters lists the people
  // whose user name or name starts so (GET /notifications/people/?q=); ↑/↓ choose, Enter or Tab or a
  // click inserts "@username ", Escape closes. Delegated: works in fragments htmx swaps in.
  var mention = { box: null, area: null, start: -1, items: [], active: 0, timer: null, seq: 0 };

  function mentionQuery(area) {
    var upto = area.value.slice(0, area.selectionStart);
    var match = /(^|[^\w@.+-])@([\w.+-]{1,50})$/.exec(upto);
    if (!match) return null;
    return { start: upto.length - match[2].length - 1, q: match[2] };
  }

  function closeMentions() {
    if (mention.box) mention.box.remove();
    mention.box = null;
    mention.items = [];
    mention.start = -1;
  }

  function pickMention(index) {
    var person = mention.items[index];
    var area = mention.area;
    if (!person || !area) return;
    var before = area.value.slice(0, mention.start);
    var after = area.value.slice(area.selectionStart);
    var text = "@" + person.username + " ";
    area.value = before + text + after;
    var caret = before.length + text.length;
    area.setSelectionRange(caret, caret);
    area.focus();
    closeMentions();
  }

  function showMentions(area, start, people) {
    closeMentions();
    if (!people.length) return;
    mention.area = area;
    mention.start = start;
    mention.items = people;
    mention.active = 0;
    var box = document.createElement("ul");
    box.className = "list-group tk-mentions shadow-sm";
    box.setAttribute("role", "listbox");
    box.setAttribute("aria-label", "People to mention");
    people.forEach(function (person, i) {
      var li = document.createElement("li");
      li.className = "list-group-item list-group-item-action py-1" + (i === 0 ? " active" : "");
      li.setAttribute("role", "option");
      li.dataset.index = String(i);
      li.textContent = "@" + person.username + (person.name !== person.username ? " · " + person.name : "");
      li.addEventListener("mousedown", function (event) {
        event.preventDefault();
        pickMention(i);
      });
      box.appendChild(li);
    });
    area.insertAdjacentElement("afterend", box);
    mention.box = box;
  }

  function moveMention(step) {
    if (!mention.box) return;
    var rows = mention.box.querySelectorAll("li");
    rows[mention.active].classList.remove("active");
    mention.active = (mention.active + step + rows.length) % rows.length;
    rows[mention.active].classList.add("active");
  }

  document.addEventListener("input", function (event) {
    var area = event.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.hasAttribute("data-mentions")) return;
    var found = mentionQuery(area);
    if (!found) {
      closeMentions();
      return;
    }
    window.clearTimeout(mention.timer);
    var seq = ++mention.seq;
    mention.timer = window.setTimeout(function () {
      fetch("/notifications/people/?q=" + encodeURIComponent(found.q), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          return response.ok ? response.json() : { people: [] };
        })
        .then(function (data) {
          if (seq === mention.seq) showMentions(area, found.start, data.people || []);
        })
        .catch(closeMentions);
    }, 150);
  });

  document.addEventListener("keydown", function (event) {
    if (!mention.box || event.target !== mention.area) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      moveMention(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      pickMention(mention.active);
    } else if (event.key === "Escape") {
      closeMentions();
    }
  });

  document.addEventListener("focusout", function (event) {
    if (event.target === mention.area) window.setTimeout(closeMentions, 150);
  });

  function init(root) {
    labelCells(root);
    initRanking(root);
    initQuadrantPreview(root);
    initTableSort(root);
  }

  // "/" anywhere outside a text field goes to the header's search box (docs/search.md).
  function initSearchKey() {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
      var target = event.target;
      var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
      if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) return;
      var box = document.getElementById("header-search");
      if (!box || box.offsetParent === null) return; // not shown (collapsed menu at narrow widths)
      event.preventDefault();
      box.focus();
      box.select();
    });
  }

  // htmx is loaded with `defer`: it exists once the document is parsed.
  document.addEventListener("DOMContentLoaded", function () {
    initSearchKey();
    restoreDrafts();
    // Saved views sit above the list on narrow screens: folded there, unless one is open.
    var views = document.querySelector("[data-sidebar-toggle]");
    if (views && window.innerWidth < 1600 && !views.querySelector("[aria-current]")) views.open = false;
    init(document);
  });
  // Every fragment htmx swaps in (a table page, a polled status): htmx fires htmx:load on it, and
  // the event bubbles here whatever the order the two scripts ran in (htmx is deferred; waiting for
  // window.htmx at DOMContentLoaded missed it). Every init* is idempotent.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail && event.detail.elt && event.detail.elt !== document.body) init(event.detail.elt);
  });
})();
