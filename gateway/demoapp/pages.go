package demoapp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
)

// The page's only style and script are these constants, inlined so the app
// works offline. The CSP admits exactly them by hash: an injected script or
// style cannot run, and the script can only talk to this origin.
const pageCSS = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#d9dde5;--accent:#2456d6;--ok:#1b7a3d}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a2aabb;--bg:#14171d;--card:#1d212a;--line:#323846;--accent:#7aa2ff;--ok:#6fd08f}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:52rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .3rem}
h2{font-size:1rem;margin:0 0 .5rem;color:var(--muted)}
.grid{display:grid;grid-template-columns:1fr 2fr;gap:1rem;margin-top:1rem}
@media (max-width:40rem){.grid{grid-template-columns:1fr}}
section{background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:1rem}
ul,ol{list-style:none;margin:0;padding:0}
#roster li{padding:.25rem 0}
.small{font-size:.85rem}
#log{height:18rem;overflow-y:auto;margin-bottom:.6rem}
#log li{padding:.15rem 0;overflow-wrap:anywhere}
#log .note{color:var(--muted);font-style:italic}
form{display:flex;gap:.5rem}
input{flex:1;font:inherit;padding:.4rem .6rem;border:1px solid var(--line);border-radius:.4rem;background:var(--bg);color:inherit}
button{font:inherit;padding:.4rem .9rem;border:0;border-radius:.4rem;background:var(--accent);color:#fff;cursor:pointer}
button:disabled,input:disabled{opacity:.5;cursor:not-allowed}
.badge{display:inline-block;font-size:.8rem;padding:0 .45rem;border-radius:1rem;border:1px solid var(--line)}
.ok{border-color:var(--ok);color:var(--ok)}
.muted{color:var(--muted)}
code{font-size:.9em}
`

const roomJS = `(() => {
"use strict";
const $ = (id) => document.getElementById(id);
const roster = new Map();
let me = null, ws = null, retry = 0;
function row(m) {
  const li = document.createElement("li");
  const name = document.createElement("strong");
  name.textContent = m.name + (me && m.id === me.id ? " (you)" : "");
  const meta = document.createElement("div");
  meta.className = "muted small";
  meta.textContent = [m.email, m.role, m.verified ? "verified" : ""].filter(Boolean).join(" · ");
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
// closes a removed participant's socket with 4001, a banned one's with 4003).
function gone(text) {
  $("status").textContent = text;
  $("text").disabled = true;
  say(text, true);
}
function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + location.pathname.replace(/\/+$/, "") + "/ws");
  ws.onopen = () => { retry = 0; $("status").textContent = "connected"; };
  ws.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    switch (ev.type) {
    case "welcome": me = ev.you; roster.clear(); for (const m of ev.roster || []) roster.set(m.id, m); draw(); break;
    case "joined": roster.set(ev.member.id, ev.member); draw(); say(ev.member.name + " joined", true); break;
    case "left": roster.delete(ev.member.id); draw(); say(ev.member.name + " left", true); break;
    case "chat": say(ev.member.name + ": " + ev.text, false); break;
    case "error": say(ev.text, true); break;
    }
  };
  ws.onclose = (e) => {
    roster.clear(); draw();
    if (e.code === 4001 || e.code === 4003) { gone("You were removed from this meeting"); return; }
    if (e.code === 1008 || e.code === 1001) { $("status").textContent = "disconnected: " + (e.reason || "closed"); return; }
    if (++retry > 5) { gone("Disconnected. Reload the page to join again."); return; }
    $("status").textContent = "reconnecting…";
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
})();`

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

var contentSecurityPolicy = "default-src 'none'; script-src " + cspHash(roomJS) +
	"; style-src " + cspHash(pageCSS) +
	"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// The style and script are bound as functions so that exactly the constant
// text is emitted: the CSP hashes are over that text.
var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"css": func() template.CSS { return template.CSS(pageCSS) },
	"js":  func() template.JS { return template.JS(roomJS) },
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.}} · meetguard demo</title><style>` + "{{css}}" + `</style></head>{{end}}

{{define "index"}}{{template "head" "Demo upstream"}}
<body><main>
<h1>meetguard demo meeting app</h1>
<p>This is the demo upstream that <code>meetguard dev</code> puts behind the gateway. It trusts the identity
headers the gateway sets, so open a room <em>through the gateway</em>, e.g. <code>/room/standup</code>.</p>
<p class="muted">Each room page shows who the gateway says you are and, live, who else is in the room.</p>
</main></body></html>{{end}}

{{define "message"}}{{template "head" .Title}}
<body><main><h1>{{.Title}}</h1><p>{{.Text}}</p></main></body></html>{{end}}

{{define "room"}}{{template "head" .Room}}
<body><main>
<h1>Room {{.Room}}</h1>
<p>You are <strong>{{.Me.Display}}</strong>{{with .Me.Email}} &lt;{{.}}&gt;{{end}}
· role <span class="badge">{{.Me.Role}}</span>
· {{if .Me.Verified}}<span class="badge ok">gateway assertion verified</span>{{else}}<span class="badge">gateway assertion not checked</span>{{end}}</p>
<div class="grid">
<section><h2>In the room (<span id="count">0</span>)</h2><ul id="roster"></ul></section>
<section><h2>Chat</h2><ol id="log"></ol>
<form id="chat"><input id="text" maxlength="500" autocomplete="off" placeholder="{{if eq .Me.Role "viewer"}}Viewers cannot chat{{else}}Say something{{end}}"{{if eq .Me.Role "viewer"}} disabled{{end}}><button{{if eq .Me.Role "viewer"}} disabled{{end}}>Send</button></form>
</section>
</div>
<p class="muted" id="status">connecting…</p>
</main>
<script>` + "{{js}}" + `</script>
</body></html>{{end}}
`))

type roomPage struct {
	Room string
	Me   identity
}

type messagePage struct {
	Title string
	Text  string
}

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
