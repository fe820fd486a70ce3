// The register board: drag a card to another step (SortableJS), or, on a focused card, Alt+← / Alt+→
// to move it a step back or forward. Every move is services.transition_item on the server: a refusal
// (what the step needs) is shown inside the card, which goes back where it was. Each card also has
// a Move form (a step select and a button) that works from the keyboard and without JavaScript.
(function () {
  "use strict";

  function csrfToken(card) {
    var field = card.querySelector("input[name=csrfmiddlewaretoken]") || document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function say(text) {
    var box = document.getElementById("tk-board-status");
    if (box) box.textContent = text;
  }

  function refuse(card, text) {
    var box = card.querySelector("[data-board-refusal]");
    card.classList.add("is-refused");
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
    say(text);
  }

  function move(card, to) {
    var body = new URLSearchParams();
    body.append("item", card.dataset.id);
    body.append("to", to);
    body.append("version", card.dataset.version || "");
    return fetch(card.querySelector("form[data-board-move]").action, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(card), "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: body.toString(),
      credentials: "same-origin",
    }).then(function (response) {
      return response
        .json()
        .catch(function () { return { error: "The move could not be saved (HTTP " + response.status + ")." }; })
        .then(function (data) {
          if (!response.ok) throw new Error(data.error || "The move could not be saved.");
          return data;
        });
    });
  }

  // The card is where the server says: its step, its version and the moves it now offers.
  function settle(card, data) {
    card.dataset.status = data.status;
    card.dataset.version = String(data.version);
    card.classList.remove("is-refused");
    var box = card.querySelector("[data-board-refusal]");
    if (box) box.hidden = true;
    var form = card.querySelector("form[data-board-move]");
    form.querySelector("input[name=version]").value = String(data.version);
    var select = form.querySelector("select[name=to]");
    select.innerHTML = "";
    data.moves.forEach(function (pair) {
      var option = document.createElement("option");
      option.value = pair[0];
      option.textContent = pair[1];
      select.appendChild(option);
    });
    say(data.message);
  }

  function column(status) {
    return document.querySelector("[data-board-drop='" + status + "']");
  }

  function moveTo(card, to) {
    var from = card.parentNode, next = card.nextSibling;
    var target = column(to);
    if (target && target !== from) target.insertBefore(card, target.firstChild);
    return move(card, to)
      .then(function (data) {
        settle(card, data);
        card.focus();
      })
      .catch(function (error) {
        from.insertBefore(card, next); // back where it was, the refusal inside it
        refuse(card, error.message);
        card.focus();
      });
  }

  function init(root) {
    var board = root.querySelector ? root.querySelector("[data-register-board]") : null;
    if (!board || board.dataset.boardReady) return;
    board.dataset.boardReady = "1";
    if (window.Sortable) {
      board.querySelectorAll("[data-board-drop]").forEach(function (list) {
        window.Sortable.create(list, {
          group: "register-board",
          draggable: "[data-movable]",
          filter: "select, button, input",
          preventOnFilter: false,
          sort: false,
          forceFallback: true, // mouse and touch events: the same on every browser, phones included
          fallbackOnBody: true,
          animation: 150,
          ghostClass: "tk-drag-ghost",
          onEnd: function (event) {
            if (event.from === event.to) return;
            var card = event.item, to = event.to.dataset.boardDrop;
            // Sortable moved the card already: put it back, then move it as the keyboard does.
            event.from.insertBefore(card, event.from.children[event.oldIndex] || null);
            moveTo(card, to);
          },
        });
      });
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-board-move]");
    if (!form) return;
    event.preventDefault();
    moveTo(form.closest("[data-movable]"), form.querySelector("select[name=to]").value);
  });

  // Alt+→ / Alt+←: the next or the previous step the card may go to (columns in step order).
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    var card = event.target.closest && event.target.closest("[data-movable]");
    if (!card || event.target !== card) return;
    var columns = Array.prototype.map.call(document.querySelectorAll("[data-board-drop]"), function (c) { return c.dataset.boardDrop; });
    var here = columns.indexOf(card.dataset.status);
    var offered = Array.prototype.map.call(card.querySelectorAll("select[name=to] option"), function (o) { return o.value; });
    var forward = event.key === "ArrowRight";
    var candidates = offered.filter(function (s) {
      var at = columns.indexOf(s);
      return forward ? at > here : at < here;
    });
    if (!candidates.length) {
      refuse(card, "No step to move to " + (forward ? "forward" : "back") + " from here.");
      return;
    }
    event.preventDefault();
    candidates.sort(function (a, b) { return columns.indexOf(a) - columns.indexOf(b); });
    moveTo(card, forward ? candidates[0] : candidates[candidates.length - 1]);
  });

  function start() {
    init(document);
    if (window.htmx) window.htmx.onLoad(function (el) { init(el.parentNode || document); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
