// Progressive enhancement only: every page works without this file.
// Copy buttons: reveal and wire `button[data-copy]` to copy the text of the
// element whose id it names.
for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
}
// Put keyboard focus on the first invalid field after a failed post.
const invalid = document.querySelector("[aria-invalid=true]");
if (invalid) invalid.focus();
// Onboarding provisioning: follow the progress stream and show the first
// login once (it is sent in the final event only).
const provision = document.getElementById("provision");
if (provision && window.WebSocket) {
  const list = document.getElementById("provision-steps");
  // The sentence above the list follows the run's end: complete or failed.
  const said = (text, failed) => {
    let status = document.getElementById("provision-status");
    if (!status) {
      status = document.createElement("p");
      status.id = "provision-status";
      provision.before(status);
    }
    status.textContent = text;
    status.className = failed ? "flash error" : "";
    status.setAttribute("role", failed ? "alert" : "status");
  };
  const show = (e) => {
    let item = list.querySelector(`li[data-task="${CSS.escape(e.task)}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.task = e.task;
      list.append(item);
    }
    item.className = e.status;
    item.replaceChildren();
    const title = document.createElement("strong");
    title.textContent = e.title;
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = e.status;
    item.append(title, ": ", status);
    if (e.message) {
      const message = document.createElement("span");
      message.className = "message";
      message.textContent = " " + e.message;
      item.append(message);
    }
    if (e.status === "failed") {
      const why = e.message.replace(/\.?$/, ".");
      said(`Provisioning failed at “${e.title}”: ${why} Reload this page to correct it and start again.`, true);
    } else if (e.task === "complete" && e.status === "done") {
      said("Provisioning is complete. Your first visitor login appears below, once.", false);
    }
    if (e.firstUser) {
      const u = e.firstUser;
      document.getElementById("provision-done-message").textContent = e.message;
      document.getElementById("first-user").textContent = u.username;
      document.getElementById("first-password").textContent = u.password;
      document.getElementById("first-secret").textContent = u.totpSecret || "";
      if (u.qrSvg) document.getElementById("first-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(u.qrSvg);
      document.getElementById("provision-done").hidden = false;
    }
  };
  const url = location.origin.replace(/^http/, "ws") + provision.dataset.base + "/api/onboarding/provision/stream";
  const socket = new WebSocket(url);
  socket.addEventListener("message", (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "state") {
      list.replaceChildren();
      for (const e of msg.events) show(e);
    } else if (msg.type === "event") {
      show(msg);
    }
  });
}

// Tunnel forms: the allowed users and groups matter only for restricted access.
for (const form of document.querySelectorAll("form")) {
  const only = form.querySelector(".restricted-only");
  if (!only) continue;
  const sync = () => {
    only.hidden = form.querySelector("input[name=access]:checked")?.value !== "restricted";
  };
  form.addEventListener("change", sync);
  sync();
}

// Live logs: follow the service's log WebSocket, newest line last, at most
// MAX_LINES lines kept; the filter form reconnects with its level and text.
const log = document.getElementById("log");
if (log && window.WebSocket) {
  const MAX_LINES = 2000;
  const form = document.getElementById("log-filters");
  const pause = document.getElementById("log-pause");
  const status = document.getElementById("log-status");
  let paused = false;
  let held = [];
  let socket = null;
  const add = (text) => {
    const line = document.createElement("span");
    line.textContent = text + "\n";
    log.append(line);
    while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  };
  const connect = () => {
    if (socket) socket.close();
    log.replaceChildren();
    held = [];
    document.getElementById("log-empty")?.remove();
    const params = new URLSearchParams({ lines: "200", level: form.level.value, q: form.q.value });
    const url = location.origin.replace(/^http/, "ws") + log.dataset.base + "/api/services/"
      + encodeURIComponent(log.dataset.service) + "/logs?" + params;
    const ws = new WebSocket(url);
    socket = ws;
    ws.addEventListener("open", () => { status.textContent = "Following"; });
    ws.addEventListener("close", () => { if (socket === ws) status.textContent = "Disconnected"; });
    ws.addEventListener("message", (m) => {
      if (paused) {
        held.push(m.data);
        if (held.length > MAX_LINES) held.shift();
        return;
      }
      const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      add(m.data);
      if (follow) log.scrollTop = log.scrollHeight;
    });
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    history.replaceState(null, "", "?" + new URLSearchParams(new FormData(form)));
    connect();
  });
  pause.hidden = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      for (const text of held) add(text);
      held = [];
      log.scrollTop = log.scrollHeight;
    }
  });
  connect();
}
// Doctor: while a run goes on, poll its findings and redraw the table.
const doctor = document.getElementById("doctor");
if (doctor && doctor.dataset.running === "1") {
  const body = document.querySelector("#doctor-findings tbody");
  const status = document.getElementById("doctor-status");
  const button = document.getElementById("doctor-run");
  const cell = (text) => {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  };
  const draw = (run) => {
    body.replaceChildren(
      ...run.findings.map((f) => {
        const tr = document.createElement("tr");
        tr.className = "finding " + f.level;
        const badge = document.createElement("span");
        badge.className = "badge " + f.level;
        badge.textContent = f.level;
        const first = document.createElement("td");
        first.append(badge);
        tr.append(first, cell(f.check), cell(f.subject), cell(f.summary), cell(f.nextStep));
        return tr;
      }),
    );
    if (run.running) {
      status.textContent = `Running: ${run.findings.length} findings so far…`;
    } else if (run.report) {
      const r = run.report;
      const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
      status.textContent = `${count(r.problems, "problem", "problems")}, ${count(r.warnings, "warning", "warnings")} in ${count(r.findings.length, "check", "checks")}, ${r.tookMs} ms.`;
      button.disabled = false;
      button.textContent = "Run the doctor";
    }
  };
  const poll = async () => {
    try {
      const res = await fetch(doctor.dataset.base + "/api/doctor", { headers: { Accept: "application/json" } });
      if (res.ok) {
        const run = await res.json();
        draw(run);
        if (!run.running) return;
      }
    } catch (_) {
      // keep polling: the panel may be busy for a moment
    }
    setTimeout(poll, 400);
  };
  poll();
}
// Services: the table refreshes itself (state, pid, uptime, buttons), except
// while the operator is using it (a confirmation open or a button focused).
const services = document.querySelector("table[data-refresh]");
if (services && window.DOMParser) {
  setInterval(async () => {
    if (document.hidden || services.querySelector("details[open]") || services.contains(document.activeElement)) return;
    try {
      const reply = await fetch(services.dataset.refresh, { credentials: "same-origin" });
      if (!reply.ok) return;
      const fresh = new DOMParser().parseFromString(await reply.text(), "text/html").querySelector("table[data-refresh] tbody");
      if (fresh) services.querySelector("tbody").replaceWith(fresh);
    } catch {
      // The panel restarting: try again at the next tick.
    }
  }, 5000);
}
// Phones: the navigation folds behind a Menu button (the CSS shows the
// button and hides the folded list below 600 px only).
const menu = document.querySelector(".menu-button");
const nav = document.getElementById("main-nav");
if (menu && nav) {
  nav.classList.add("collapsed");
  menu.hidden = false;
  menu.addEventListener("click", () => {
    const open = nav.classList.toggle("collapsed") === false;
    menu.setAttribute("aria-expanded", String(open));
  });
}
// Phones: tables stack their cells; each cell is labelled with its column's
// heading (shown by the CSS below 600 px only).
const label = (table) => {
  const headings = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      const empty = cell.textContent.trim() === "";
      if (headings[i] && !empty && !cell.hasAttribute("colspan") && !cell.dataset.label) cell.dataset.label = headings[i];
    });
  }
};
document.querySelectorAll("table").forEach(label);
// Tables that refresh themselves are labelled again after each refresh.
new MutationObserver((changes) => {
  for (const change of changes) {
    const table = change.target.closest && change.target.closest("table");
    if (table) label(table);
  }
}).observe(document.body, { childList: true, subtree: true });
// Restarting page: poll the health route until a new panel process (a new
// boot id) answers, then go on; errors and 502s while it restarts are expected.
const restarting = document.getElementById("restarting");
if (restarting) {
  const { health, next, boot } = restarting.dataset;
  const poll = async () => {
    try {
      const reply = await fetch(health, { cache: "no-store", credentials: "same-origin" });
      if (reply.ok) {
        const body = await reply.json();
        if (body.boot && body.boot !== boot) {
          window.location.assign(next);
          return;
        }
      }
    } catch {
      // The panel is down while it restarts.
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}
