// The sprint board: drag a card between columns (SortableJS). Each card also has a column select
// and a Move button, a plain form that works from the keyboard and without JavaScript.
(function () {
  "use strict";

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function say(text, kind) {
    var box = document.getElementById("tk-board-status");
    if (!box) return;
    box.className = "alert py-1 small alert-" + kind;
    box.textContent = text;
    box.hidden = false;
  }

  function move(card, column, position) {
    var body = new URLSearchParams();
    body.append("column", column);
    body.append("position", String(position));
    body.append("expected_version", card.dataset.version);
    return fetch(card.dataset.moveUrl, {
      method: "POST",
      headers: {
        "X-CSRFToken": csrfToken(),
        "Content-Type": "application/x-www-form-urlencoded",
        Accept: "application/json",
      },
      body: body.toString(),
      credentials: "same-origin",
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return { error: "The move could not be saved (HTTP " + response.status + ")." };
        })
        .then(function (data) {
          if (!response.ok) throw new Error(data.error || "The move could not be saved.");
          card.dataset.version = String(data.version);
          var select = card.querySelector("select[name=column]");
          if (select) select.value = column;
          var version = card.querySelector("input[name=expected_version]");
          if (version) version.value = String(data.version);
          say(data.message, "success");
        });
    });
  }

  function recount(board) {
    board.querySelectorAll("ul[data-column]").forEach(function (list) {
      var badge = document.querySelector("[data-count-of='" + list.dataset.column + "']");
      if (badge) badge.textContent = String(list.children.length);
    });
  }

  function failed(error) {
    say(error.message + " The board is reloaded as saved.", "danger");
    window.setTimeout(function () {
      window.location.reload();
    }, 1500);
  }

  // The keyboard's way: the column select and Move button save by fetch, as a drag does, and the
  // card moves to the end of its new column with the focus kept on its select, so a keyboard user
  // keeps their place (without JavaScript the form posts and the page reloads).
  function keyboardMoves(board) {
    board.querySelectorAll("form[data-move-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var card = form.closest("li[data-id]");
        var select = form.querySelector("select[name=column]");
        var list = board.querySelector("ul[data-column='" + select.value + "']");
        if (!card || !list) return;
        if (card.parentElement === list) {
          say(select.options[select.selectedIndex].text + ": the card is there already.", "info");
          return;
        }
        var position = list.children.length + 1;
        move(card, select.value, position)
          .then(function () {
            list.appendChild(card);
            recount(board);
            select.focus();
          })
          .catch(failed);
      });
    });
  }

  function init() {
    var board = document.querySelector("[data-sprint-board='1']");
    if (!board) return;
    keyboardMoves(board);
    if (!window.Sortable) return;
    board.querySelectorAll("ul[data-column]").forEach(function (list) {
      window.Sortable.create(list, {
        group: "sprint",
        handle: ".tk-grip",
        animation: 150,
        ghostClass: "tk-drag-ghost",
        onEnd: function (event) {
          if (event.from === event.to && event.oldIndex === event.newIndex) return;
          var card = event.item;
          move(card, event.to.dataset.column, event.newIndex + 1)
            .then(function () {
              recount(board);
            })
            .catch(failed);
        },
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
