// pli — the practice's page: live updates, drag and drop, upload progress, print.
// Progressive: every page works without this script. No inline script anywhere (CSP).
"use strict";

(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;

  // --- live: refresh the parts marked data-live when the daemon says something changed
  async function refresh() {
    const live = document.querySelectorAll("[data-live]");
    if (!live.length) return;
    const answer = await fetch(location.href, { credentials: "same-origin" });
    if (!answer.ok) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    const parts = fresh.querySelectorAll("[data-live]");
    live.forEach((part, i) => { if (parts[i]) part.replaceWith(document.importNode(parts[i], true)); });
    const badge = fresh.querySelector("nav a[href='/']");
    const mine = document.querySelector("nav a[href='/']");
    if (badge && mine) mine.replaceWith(document.importNode(badge, true));
  }

  function notify(event) {
    if (event.type !== "document-received") return;
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(body.dataset.newLetter || "pli");
    }
  }

  if ("EventSource" in window && csrf) {
    const source = new EventSource("/events");
    let pending = null;
    const onEvent = (message) => {
      let event = {};
      try { event = JSON.parse(message.data); } catch (e) { return; }
      notify(event);
      clearTimeout(pending);
      pending = setTimeout(refresh, 100);
    };
    // a sent document's receipts: delivered, then integrated (or not) and read
    ["document-received", "document-delivered", "document-queued",
     "document-integrated", "document-read",
     "pairing-changed", "peer-renamed", "peer-name-waiting"].forEach(
      (type) => source.addEventListener(type, onEvent));
  }

  const askNotify = document.querySelector("[data-notify]");
  if (askNotify && "Notification" in window && Notification.permission === "default") {
    askNotify.hidden = false;
    askNotify.addEventListener("click", () => {
      Notification.requestPermission().then(() => { askNotify.hidden = true; });
    });
  }

  const printButton = document.querySelector("[data-print]");
  if (printButton) {
    printButton.hidden = false;
    printButton.addEventListener("click", () => window.print());
  }

  // --- pairing wizard: reload the step when the daemon says the attempt moved on
  // (a GET of the step's own page, never a reload: the page may answer a form)
  const wizard = document.querySelector("[data-pair-poll]");
  if (wizard) {
    const shown = wizard.dataset.state;
    const reload = wizard.querySelector("[data-testid=reload]");
    if (reload) reload.hidden = true;
    let leaving = false;
    window.addEventListener("pagehide", () => { leaving = true; });
    document.addEventListener("submit", () => { leaving = true; });
    const poll = async () => {
      try {
        const url = wizard.dataset.pairPoll + "?shown=" + encodeURIComponent(shown);
        const answer = await fetch(url, { credentials: "same-origin" });
        if (leaving) return;
        if (answer.ok && (await answer.json()).state !== shown) {
          location.assign(wizard.dataset.pairPage); return;
        }
        if (!answer.ok) { if (reload) reload.hidden = false; return; }
      } catch (err) { if (reload) reload.hidden = false; return; }
      setTimeout(poll, 100);
    };
    poll();
  }

  // --- print a prescription's own page (its frame), not the page around it
  document.querySelectorAll("[data-print-frame]").forEach((button) => {
    const frame = document.getElementById(button.dataset.printFrame);
    if (!frame) return;
    button.hidden = false;
    button.addEventListener("click", () => frame.contentWindow.print());
  });

  // --- compose: drop files, show them, send with progress
  const form = document.querySelector("form.compose");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const drop = form.querySelector("[data-drop]");
  const chosen = form.querySelector("[data-chosen]");
  const progress = form.querySelector("[data-progress]");
  const problems = document.querySelector("[data-problems]");

  function showChosen() {
    chosen.replaceChildren(...Array.from(input.files).map((file) => {
      const item = document.createElement("li");
      item.textContent = file.name + " (" + Math.ceil(file.size / 1024) + " Kio)";
      return item;
    }));
  }
  input.addEventListener("change", showChosen);
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; showChosen(); }
  });

  function showProblems(list) {
    const ul = problems.querySelector("ul");
    ul.replaceChildren(...list.map((text) => {
      const item = document.createElement("li"); item.textContent = text; return item;
    }));
    problems.hidden = false;
    problems.focus();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    const label = button.textContent;
    button.textContent = form.dataset.sending;
    progress.hidden = false; progress.value = 0;
    const request = new XMLHttpRequest();
    request.open("POST", form.getAttribute("action"));
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRF-Token", csrf);
    request.upload.addEventListener("progress", (p) => {
      if (p.lengthComputable) progress.value = Math.round((100 * p.loaded) / p.total);
    });
    request.addEventListener("load", () => {
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (err) { answer = { problems: [request.responseText] }; }
      if (request.status < 300 && answer.location) { location.assign(answer.location); return; }
      button.disabled = false; button.textContent = label; progress.hidden = true;
      showProblems(answer.problems || [request.responseText]);
    });
    request.addEventListener("error", () => {
      button.disabled = false; button.textContent = label; progress.hidden = true;
      showProblems([form.dataset.unreachable]);
    });
    request.send(new FormData(form));
  });
})();
