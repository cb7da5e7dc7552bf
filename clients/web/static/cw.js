// cw in the browser: live updates over server-sent events, and the inline comment form of a diff.
// No inline scripts anywhere (the pages' Content-Security-Policy forbids them); every text that
// arrives here is put in the page as text (textContent), never as HTML.
"use strict";

(function () {
  const body = document.body;
  const REFRESH_DELAY_MS = 0;  // events of one write arrive together; a refresh in flight coalesces the rest
  let refreshTimer = null;
  let refreshing = false;
  let again = false;

  function setState(text) {
    const badge = document.getElementById("live-state");
    if (badge) { badge.textContent = text; badge.dataset.state = text; }
  }

  // Replaces every live region ([data-live] with an id) with the same region of the page read anew.
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok || answer.redirected) { return; }
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (region) {
        const replacement = fresh.getElementById(region.id);
        if (replacement) { region.replaceWith(document.importNode(replacement, true)); }
      });
      // Output follows the task's latest agent: a new one (a retry, the first start) is followed anew.
      document.querySelectorAll("[data-follows][id]").forEach(function (section) {
        const replacement = fresh.getElementById(section.id);
        if (!replacement || replacement.dataset.follows === section.dataset.follows) { return; }
        section.querySelectorAll("pre.output").forEach(function (pre) { if (pre.source) { pre.source.close(); } });
        const adopted = document.importNode(replacement, true);
        section.replaceWith(adopted);
        adopted.querySelectorAll("pre.output[data-agent]").forEach(followOutput);
      });
      body.dataset.refreshes = String(Number(body.dataset.refreshes || "0") + 1);
    } finally {
      refreshing = false;
      if (again) { again = false; schedule(); }
    }
  }

  function schedule() {
    if (refreshTimer) { return; }
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, REFRESH_DELAY_MS);
  }

  // A row's new status, from the event itself: shown before the page is read again.
  function showStatus(id, status) {
    document.querySelectorAll('[data-status-of="' + CSS.escape(id) + '"]').forEach(function (badge) {
      badge.textContent = status;
      badge.className = "status status-" + status;
    });
  }

  // A created task's row, sent with its event (a board's stream: rows=tasks), added to its phase
  // at once; the page is read again after, for what else changed (counts). The row is the
  // server's, escaped as the board's own rows are, parsed inert (DOMParser runs no script).
  function showNewRow(event) {
    if (!event.row || !event.phase_id || document.getElementById("task-" + event.entity_id)) { return; }
    const list = document.querySelector("#phase-" + CSS.escape(event.phase_id) + " ul.tasks");
    if (!list) { return; }
    const parsed = new DOMParser().parseFromString("<ul>" + event.row + "</ul>", "text/html");
    const item = parsed.querySelector("li.task");
    if (!item) { return; }
    list.querySelectorAll(":scope > li.dim").forEach(function (empty) { empty.remove(); });
    list.appendChild(document.importNode(item, true));
    body.dataset.rowsShown = String(Number(body.dataset.rowsShown || "0") + 1);
  }

  function showEvent(event) {
    const feed = document.getElementById("event-feed");
    if (!feed) { return; }
    const item = document.createElement("li");
    item.textContent = "#" + event.sequence + " " + event.type + " " + event.entity_id;
    feed.prepend(item);
    while (feed.children.length > 50) { feed.lastChild.remove(); }
  }

  function followEvents() {
    if (!body.dataset.csrf) { return; }  // not logged in: nothing to follow
    const params = new URLSearchParams({ after: body.dataset.after || "0" });
    if (body.dataset.scope) { params.set("initiative", body.dataset.scope); }
    if (body.dataset.rows) { params.set("rows", body.dataset.rows); }
    const source = new EventSource("/live/events?" + params.toString());
    source.onopen = function () { setState("live"); };
    source.onerror = function () { setState("reconnecting"); };
    source.addEventListener("cw", function (message) {
      const event = JSON.parse(message.data);
      body.dataset.lastEvent = message.lastEventId;
      if (event.status) { showStatus(event.entity_id, event.status); }
      showNewRow(event);
      showEvent(event);
      if (body.dataset.refresh === "page") { schedule(); }
    });
  }

  function followOutput(pre) {
    const source = new EventSource("/live/agents/" + encodeURIComponent(pre.dataset.agent) + "/output");
    pre.source = source;
    source.addEventListener("output", function (message) {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(JSON.parse(message.data)));
      if (atEnd) { pre.scrollTop = pre.scrollHeight; }
    });
    // The agent ended and all its output is here: no reconnecting.
    source.addEventListener("finished", function () { source.close(); pre.dataset.finished = "yes"; });
  }

  // A click on a diff line's number opens the comment form under that line.
  function commentOnClick() {
    const form = document.getElementById("comment-form");
    if (!form) { return; }
    document.addEventListener("click", function (click) {
      const cell = click.target.closest("table.diff tr.line td.num");
      if (!cell) { return; }
      const row = cell.parentElement;
      const file = row.closest("details.file");
      form.elements.file.value = file.dataset.path;
      form.elements.line.value = row.dataset.line;
      form.elements.side.checked = row.dataset.side === "old";
      const holder = document.createElement("tr");
      holder.className = "comment-holder";
      const cellForForm = document.createElement("td");
      cellForForm.colSpan = 3;
      holder.appendChild(cellForForm);
      document.querySelectorAll("tr.comment-holder").forEach(function (old) {
        if (!old.contains(form)) { old.remove(); }
      });
      row.after(holder);
      cellForForm.appendChild(form);
      form.classList.add("open");
      form.elements.body.focus();
    });
  }

  // A deferred file of a big diff (not rendered at first) is read when opened: the same page with
  // only that file, whose rendered file replaces the placeholder.
  function loadDeferredFiles() {
    document.querySelectorAll("details.file[data-deferred]").forEach(function (file) {
      file.addEventListener("toggle", async function () {
        if (!file.open || file.dataset.loaded) { return; }
        file.dataset.loaded = "loading";
        const link = file.querySelector("a.load-file");
        const answer = await fetch(link.href, { credentials: "same-origin", cache: "no-store" });
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
        const rendered = fresh.getElementById(file.id);
        if (!answer.ok || !rendered) { file.dataset.loaded = ""; return; }
        const loaded = document.importNode(rendered, true);
        loaded.open = true;
        loaded.dataset.loaded = "yes";
        file.replaceWith(loaded);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadDeferredFiles();
    followEvents();
    document.querySelectorAll("pre.output[data-agent]").forEach(followOutput);
    commentOnClick();
  });
})();
