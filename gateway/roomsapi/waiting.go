package roomsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// The waiting page and the refusal page are one small page with two
// states. Its script is inline and allowed by hash (no external assets, no
// 'unsafe-inline'); what differs per request travels in data- attributes,
// so the script, and its hash, never change.
//
// Waiting, it long-polls GET rooms/{room}/wait/{wait_id}; when a host
// admits, that answer sets the ticket cookie and the page reloads into the
// meeting. Refused, it shows the one refusal every non-member gets and a
// passcode field: offering the field on every refusal is what keeps a
// passcode room from being told apart from a missing one.
const pageScript = `(()=>{
const root=document.getElementById("mg"),msg=document.getElementById("msg"),form=document.getElementById("pc");
const api="/.meetguard/api/v1/rooms/"+encodeURIComponent(root.dataset.room);
let wait=root.dataset.wait||"";
const sleep=ms=>new Promise(r=>setTimeout(r,ms));
async function poll(){
 for(let fails=0;wait;){
  let r;
  try{r=await fetch(api+"/wait/"+encodeURIComponent(wait)+"?timeout=25",{headers:{"Accept":"application/json"},cache:"no-store",credentials:"same-origin"});}
  catch(e){await sleep(Math.min(30000,1000*2**Math.min(fails++,5)));continue;}
  fails=0;
  if(r.status===200){const b=await r.json();if(b.status==="admitted"){location.reload();return;}continue;}
  if(r.status===429||r.status>=500){await sleep(5000);continue;}
  const b=await r.json().catch(()=>({}));
  msg.textContent=b.message||"You are no longer in the waiting room.";wait="";root.dataset.state="done";
 }
}
async function join(body){
 msg.textContent="Checking…";
 let r;
 try{r=await fetch(api+"/join",{method:"POST",headers:{"Content-Type":"application/json","Accept":"application/json","Meetguard-CSRF":"1"},credentials:"same-origin",body:JSON.stringify(body)});}
 catch(x){msg.textContent="The meeting cannot be reached right now.";return;}
 const b=await r.json().catch(()=>({}));
 if(r.status===200){location.reload();return;}
 if(r.status===202){wait=b.wait_id;if(form)form.hidden=true;if(again)again.hidden=true;root.dataset.state="waiting";msg.textContent=b.message||"Please wait, a host will let you in soon.";poll();return;}
 msg.textContent=b.message||"This meeting is not available.";
}
const again=document.getElementById("again");
if(form){form.addEventListener("submit",e=>{e.preventDefault();join({passcode:form.elements.passcode.value});});}
if(again){again.addEventListener("click",()=>join({}));}
poll();
})();`

const pageStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d2733}
h1{font-size:1.4rem}.box{border:1px solid #d5dbe3;border-radius:8px;padding:1.5rem}
input{font:inherit;padding:.3rem .5rem}button{font:inherit;padding:.3rem .9rem}
[data-state=waiting] #pc{display:none}`

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · meetguard</title><style>{{.Style}}</style></head>
<body><div class="box" id="mg" data-room="{{.Room}}" data-wait="{{.Wait}}" data-state="{{.State}}">
<h1>{{.Title}}</h1><p id="msg" role="status" aria-live="polite">{{.Message}}</p>
{{if .Again}}<p><button id="again" type="button">Ask to join again</button></p>{{end}}
{{if .Form}}<form id="pc" autocomplete="off"><label>Passcode, if you were given one:<br>
<input name="passcode" type="password" maxlength="128" required></label> <button type="submit">Join</button></form>{{end}}
</div><script>{{.Script}}</script></body></html>
`))

type pages struct {
	csp string
}

func newPages() (*pages, error) {
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return &pages{csp: fmt.Sprintf("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "+
		"form-action 'none'; base-uri 'none'; frame-ancestors 'none'", h(pageScript), h(pageStyle))}, nil
}

type pageData struct {
	Title, Message, Room, Wait, State string
	Form, Again                       bool
	Script                            template.JS
	Style                             template.CSS
}

func (p *pages) write(w http.ResponseWriter, status int, d pageData) {
	d.Script, d.Style = template.JS(pageScript), template.CSS(pageStyle)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", p.csp)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// waitingPage answers a browser sent to the lobby: 202, its wait cookie,
// and the page that follows the lobby until a host decides.
func (a *API) waitingPage(room string, wait rooms.WaitID, message string, cookie *http.Cookie) http.HandlerFunc {
	if message == "" {
		message = "Please wait, a host will let you in soon."
	}
	return func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, cookie)
		a.pages.write(w, http.StatusAccepted, pageData{Title: "Waiting room", Message: message, Room: room, Wait: string(wait), State: "waiting"})
	}
}

// removedPage answers a tab that reloads with a ticket cookie that no
// longer works. It does not knock: the person asks to, with the button
// (POST …/join). Only an authentic ticket of this caller, for this room,
// whose admission ended (revoked) says "removed"; any other is just
// stale, and reveals nothing about the room.
func (a *API) removedPage(room string, revoked bool) http.HandlerFunc {
	title, msg := "meetguard", "Your ticket for this meeting is not valid any more."
	if revoked {
		title, msg = RemovedMessage, "A host removed you, or your place in the meeting ended."
	}
	return func(w http.ResponseWriter, r *http.Request) {
		a.pages.write(w, http.StatusForbidden, pageData{Title: title, Message: msg, Room: room, State: "removed", Again: true})
	}
}

// deniedPage answers every refused browser the same way, with the passcode
// form.
func (a *API) deniedPage(room string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.pages.write(w, http.StatusForbidden, pageData{Title: "meetguard", Message: DeniedMessage, Room: room, State: "denied", Form: true})
	}
}
