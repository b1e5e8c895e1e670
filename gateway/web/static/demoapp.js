(() => {
"use strict";
const $ = (id) => document.getElementById(id);
const t = JSON.parse($("mg-text").textContent);
const roster = new Map();
let me = null, ws = null, retry = 0;
function row(m) {
  const li = document.createElement("li");
  const name = document.createElement("strong");
  name.textContent = m.name + (me && m.id === me.id ? t.you : "");
  const meta = document.createElement("div");
  meta.className = "muted small";
  meta.textContent = [m.email, m.role, m.verified ? t.verified : ""].filter(Boolean).join(" · ");
  li.append(name, meta);
  return li;
}
function draw() {
  $("roster").replaceChildren(...[...roster.values()].map(row));
  $("count").textContent = String(roster.size);
}
function say(text, note) {
  const li = document.createElement("li");
  li.textContent = text;
  if (note) li.className = "note";
  const log = $("log");
  log.append(li);
  log.scrollTop = log.scrollHeight;
}
// gone ends the page's life in the room: no more reconnecting (a gateway
// closes a removed participant's socket with 4001, a banned one's with 4003;
// 4005, a role change, reconnects at once).
function gone(text) {
  $("status").textContent = text;
  $("text").disabled = true;
  say(text, true);
}
function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + location.pathname.replace(/\/+$/, "") + "/ws");
  ws.onopen = () => { retry = 0; $("status").textContent = t.connected; };
  ws.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    switch (ev.type) {
    case "welcome": me = ev.you; roster.clear(); for (const m of ev.roster || []) roster.set(m.id, m); draw(); break;
    case "joined": roster.set(ev.member.id, ev.member); draw(); say(t.joined.replace("%s", ev.member.name), true); break;
    case "left": roster.delete(ev.member.id); draw(); say(t.left.replace("%s", ev.member.name), true); break;
    case "chat": say(ev.member.name + ": " + ev.text, false); break;
    case "error": say(ev.text, true); break;
    }
  };
  ws.onclose = (e) => {
    roster.clear(); draw();
    if (e.code === 4001 || e.code === 4003) { gone(t.removed); return; }
    // 4005: a host changed this person's role; the admission stands and the
    // next connection carries the new role.
    if (e.code === 4005) { retry = 0; $("status").textContent = t.reconnecting; setTimeout(connect, 100); return; }
    if (e.code === 1008 || e.code === 1001) { $("status").textContent = t.disconnected + (e.reason || t.closed); return; }
    if (++retry > 5) { gone(t.reload); return; }
    $("status").textContent = t.reconnecting;
    setTimeout(connect, 500 * 2 ** retry);
  };
}
$("chat").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("text");
  if (input.value.trim() && ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "chat", text: input.value }));
    input.value = "";
  }
});
connect();
})();
