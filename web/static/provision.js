// Onboarding provisioning: starts the run over the API and follows its
// progress stream. The first stream message is the full state
// ({type: "state", status, events}); every later one is an event
// ({type: "event", task, title, status, message, progress: {current, total}});
// the final event carries the first visitor user's credentials, shown once.
const root = document.getElementById("provision");
if (root) {
  const base = root.dataset.base;
  const form = root.querySelector("form");
  const button = form.querySelector("button");
  const list = root.querySelector("ol.progress");
  const bar = root.querySelector("progress");
  const note = root.querySelector(".provision-status");
  const rows = new Map();
  let finished = false;
  let retries = 0;

  const say = (text, kind) => {
    note.textContent = text;
    note.className = `provision-status flash ${kind}`;
    note.hidden = !text;
  };

  const el = (tag, attrs = {}, text = "") => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };

  const badge = { running: "warn", done: "ok", skipped: "", failed: "bad" };

  const showUser = (u) => {
    const box = root.querySelector(".first-user");
    box.querySelector(".user-name").textContent = u.username;
    box.querySelector(".user-password").textContent = u.password;
    if (u.qrSvg) {
      const img = box.querySelector("img.user-qr");
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(u.qrSvg)}`;
      img.hidden = false;
    }
    box.querySelector(".user-secret").textContent = u.totpSecret || "";
    box.hidden = false;
    box.scrollIntoView({ block: "start" });
  };

  const onEvent = (ev) => {
    if (!ev || typeof ev.task !== "string") return;
    let row = rows.get(ev.task);
    if (!row) {
      row = el("li", { "data-task": ev.task });
      row.append(el("span", { class: "badge" }), " ", el("strong"), " ", el("span", { class: "msg" }));
      rows.set(ev.task, row);
      list.append(row);
    }
    const [b, title, msg] = [row.children[0], row.children[1], row.children[2]];
    b.className = `badge ${badge[ev.status] ?? ""}`;
    b.textContent = ev.status;
    title.textContent = ev.title || ev.task;
    msg.textContent = ev.message || "";
    row.dataset.status = ev.status;
    if (ev.progress && ev.progress.total > 0) {
      bar.max = ev.progress.total;
      bar.value = ev.progress.current;
      bar.hidden = false;
    }
    if (ev.status === "failed") {
      say(`Provisioning stopped: ${ev.message || ev.title}. Fix the cause and start again.`, "error");
      button.disabled = false;
      button.textContent = "Try again";
    }
    if (ev.firstUser) {
      finished = true;
      showUser(ev.firstUser);
      say("Provisioning complete. Portico is ready.", "ok");
      form.hidden = true;
      root.querySelector(".done-link").hidden = false;
    }
  };

  const connect = () => {
    const url = new URL(`${base}/api/onboarding/provision/stream`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    let first = true;
    ws.addEventListener("message", (m) => {
      let data;
      try { data = JSON.parse(m.data); } catch { return; }
      if (data.type === "state" || (first && Array.isArray(data.events))) {
        data.events.forEach(onEvent);
      } else {
        onEvent(data);
      }
      first = false;
      retries = 0;
    });
    ws.addEventListener("close", () => {
      if (finished) return;
      if (retries >= 10) {
        say("Lost the progress stream. Reload the page to follow it again.", "warn");
        return;
      }
      retries += 1;
      setTimeout(connect, 500 * retries);
    });
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    say("Starting…", "warn");
    let res;
    try {
      res = await fetch(`${base}/api/onboarding/provision`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      });
    } catch {
      say("The panel did not answer. Check the connection and try again.", "error");
      button.disabled = false;
      return;
    }
    if (res.status === 404) {
      say("Provisioning is not available in this build yet.", "warn");
      button.disabled = false;
      return;
    }
    if (!res.ok && res.status !== 409) {
      const body = await res.json().catch(() => ({}));
      say(body.error || `Provisioning could not start (${res.status}).`, "error");
      button.disabled = false;
      return;
    }
    say("", "");
    connect();
  });

  if (root.dataset.running === "true") connect();
}
