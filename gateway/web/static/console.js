(()=>{
"use strict";
// The host console. It shows the host view of the room that
// GET rooms/{room}/events pushes after every change, and each button is one
// call of the rooms API (same CSRF header, same host check, same audit).
// Strings come from the page's JSON block, in the page's language.
const $=id=>document.getElementById(id);
const t=JSON.parse($("mg-text").textContent);
const room=$("console").dataset.room;
const api="/.meetguard/api/v1/rooms/"+encodeURIComponent(room);
const baseTitle=document.title;
let view=null,known=new Set(),first=true;
function el(tag,cls,text){const e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function btn(label,cls,fn){const b=el("button",cls,label);b.type="button";b.addEventListener("click",fn);return b;}
function ago(secs){secs=Math.max(0,Math.round(secs));return secs<120?t.seconds.replace("%d",secs):t.minutes.replace("%d",Math.round(secs/60));}
function since(iso){return ago((Date.now()-Date.parse(iso))/1000);}
async function call(path,method,body){
 const r=await fetch(api+path,{method:method||"POST",credentials:"same-origin",headers:{"Content-Type":"application/json","Accept":"application/json","Meetguard-CSRF":"1"},body:JSON.stringify(body||{})}).catch(()=>null);
 if(!r||!r.ok){say(t.failed);return false;}
 return true;
}
function say(text){const a=$("announce");a.hidden=false;a.textContent=text;}
function confirmAsk(text,withReason){
 return new Promise(res=>{
  const d=$("confirm");$("confirm-text").textContent=text;$("reason-row").hidden=!withReason;$("reason").value="";
  d.returnValue="";d.addEventListener("close",()=>res(d.returnValue==="yes"?{reason:$("reason").value}:null),{once:true});
  d.showModal();$("confirm-yes").focus();
 });
}
const verdictClass={staff:"badge ok",guest:"badge guest",mfa:"badge mfa",unverified:"badge guest"};
function drawWaiting(list){
 const ul=$("waiting");ul.replaceChildren();
 for(const w of list){
  const old=w.live===false;
  const li=el("li","person"+(old?" stale":""));
  const who=el("div");who.append(el("strong","",w.name||t.unnamed));
  // Who vouches for them: the address's domain and the policy's and the
  // identity provider's verdict, before anyone lets them in.
  const id=el("div","small");id.append(el("span","",w.email_domain||t.no_email));
  for(const v of (w.verdict||[])){if(t["verdict_"+v]){id.append(" ",el("span",verdictClass[v]||"badge",t["verdict_"+v]));}}
  who.append(id);
  const meta=[w.device,t.waited.replace("%s",ago(w.age_seconds||0)),old?t.stale:t.live_knock];
  who.append(el("div","muted small",meta.filter(Boolean).join(" · ")));
 const act=el("div","actions");
  act.append(btn(t.admit,"",()=>call("/lobby/"+encodeURIComponent(w.id)+"/admit")),
   btn(t.deny,"secondary",async()=>{if(await confirmAsk(t.confirm_deny.replace("%s",w.name||t.unnamed),false))call("/lobby/"+encodeURIComponent(w.id)+"/deny");}));
  act.lastChild.setAttribute("aria-label",t.deny+" "+(w.name||""));act.firstChild.setAttribute("aria-label",t.admit+" "+(w.name||""));
  li.append(who,act);ul.append(li);
 }
 $("nwaiting").textContent=String(list.length);$("waiting-empty").hidden=list.length>0;$("admit-all").disabled=list.length===0;
 document.title=(list.length?"("+list.length+") ":"")+baseTitle;
}
// The knock chime is off until the host ticks the box (a native checkbox:
// Tab and Space); the choice is remembered in this browser. Browsers let a
// page play sound only after a gesture, which ticking the box is.
let audio=null;
const sound=$("sound");
try{sound.checked=localStorage.getItem("meetguard-console-sound")==="on";}catch(e){}
sound.addEventListener("change",()=>{
 try{localStorage.setItem("meetguard-console-sound",sound.checked?"on":"off");}catch(e){}
 if(sound.checked&&!audio&&window.AudioContext)audio=new AudioContext();
});
function chime(){
 if(!sound.checked)return;
 if(!audio&&window.AudioContext)audio=new AudioContext();
 if(!audio)return;
 const o=audio.createOscillator(),g=audio.createGain(),now=audio.currentTime;
 o.frequency.value=880;g.gain.setValueAtTime(0.15,now);g.gain.exponentialRampToValueAtTime(0.001,now+0.3);
 o.connect(g);g.connect(audio.destination);o.start(now);o.stop(now+0.3);
 sound.dataset.played=String((parseInt(sound.dataset.played||"0",10))+1);
}
// roleName is a role as the host's language says it.
function roleName(r){return t["role_"+r]||r;}
// A role is changed with a select and a button (a select alone would send a
// change for every arrow key). Each push redraws the list: the chosen value
// and the keyboard focus are kept across it.
const roleChoice=new Map();
async function setRole(p,role){
 const r=await fetch(api+"/participants/"+encodeURIComponent(p.id)+"/role",{method:"POST",credentials:"same-origin",
  headers:{"Content-Type":"application/json","Accept":"application/json","Meetguard-CSRF":"1"},body:JSON.stringify({role:role})}).catch(()=>null);
 roleChoice.delete(p.id);
 if(r&&r.status===409){say(t.role_last_host);return;}
 if(!r||!r.ok){say(t.failed);return;}
 const a=await r.json().catch(()=>({}));
 let msg=t.role_changed.replace("%s",p.name||t.unnamed).replace("%s",roleName(role));
 const later=Object.keys(a.upstreams||{}).filter(k=>a.upstreams[k]==="rejoin");
 if(later.length)msg+=" "+t.role_rejoin.replace("%s",later.join(", "));
 say(msg);
}
function drawPeople(list){
 const ul=$("people");const focused=document.activeElement&&document.activeElement.dataset?document.activeElement.dataset.key:null;
 ul.replaceChildren();
 // Each admission is one device; a person on two devices is listed twice,
 // each row saying how many they are on.
 const devices=new Map();for(const p of list)devices.set(p.subject,(devices.get(p.subject)||0)+1);
 for(const p of list){
  const li=el("li","person");const who=el("div");who.append(el("strong","",p.name||t.unnamed));
  const n=devices.get(p.subject)||1;
  who.append(el("div","muted small",[roleName(p.role),n===1?t.device_one:t.devices.replace("%d",n),t.joined.replace("%s",since(p.joined_at))].join(" · ")));
  const act=el("div","actions");
  // Hosts are the policy's to make: the console offers participant and
  // viewer (and shows host only for one who is host now).
  const sel=el("select","role");sel.dataset.key="role:"+p.id;sel.setAttribute("aria-label",t.role_label.replace("%s",p.name||t.unnamed));
  for(const r of (p.role==="host"?["host","participant","viewer"]:["participant","viewer"])){const o=el("option","",roleName(r));o.value=r;sel.append(o);}
  sel.value=roleChoice.get(p.id)||p.role;
  sel.addEventListener("change",()=>roleChoice.set(p.id,sel.value));
  const set=btn(t.role_set,"secondary",()=>{if(sel.value!==p.role)setRole(p,sel.value);});
  set.dataset.key="roleset:"+p.id;set.setAttribute("aria-label",t.role_set+": "+(p.name||""));
  act.append(sel,set);
  if(p.role!=="host"){
   const rm=btn(t.remove,"secondary",async()=>{if(await confirmAsk(t.confirm_remove.replace("%s",p.name||t.unnamed),false))call("/participants/"+encodeURIComponent(p.id)+"/remove");});
   const ban=btn(t.ban,"danger",async()=>{const c=await confirmAsk(t.confirm_ban.replace("%s",p.name||t.unnamed),true);if(c)call("/participants/"+encodeURIComponent(p.id)+"/remove",null,c.reason?{ban:true,reason:c.reason}:{ban:true});});
   rm.setAttribute("aria-label",t.remove+" "+(p.name||""));ban.setAttribute("aria-label",t.ban+" "+(p.name||""));
   act.append(rm,ban);
  }
  li.append(who,act);ul.append(li);
 }
 if(focused){const f=ul.querySelector('[data-key="'+CSS.escape(focused)+'"]');if(f)f.focus();}
 $("npeople").textContent=String(list.length);
}
function draw(v){
 view=v;
 const waiting=v.waiting||[];
 const fresh=waiting.filter(w=>!known.has(w.id));
 if(!first&&fresh.length){say(t.knock.replace("%s",fresh.map(w=>w.name||t.unnamed).join(", ")));chime();}
 known=new Set(waiting.map(w=>w.id));first=false;
 drawWaiting(waiting);drawPeople(v.participants||[]);
 $("lockstate").textContent=v.locked?t.locked:t.unlocked;
 $("lock").hidden=!!v.locked;$("unlock").hidden=!v.locked;
 $("pcstate").textContent=v.passcode_set?t.passcode_on:t.passcode_off;$("pc-clear").disabled=!v.passcode_set;
 $("capstate").textContent=t.capacity_now.replace("%d",v.capacity).replace("%d",(v.participants||[]).length);
 const cap=$("cap-input");if(document.activeElement!==cap)cap.value=String(v.capacity);
 $("lobbystate").textContent=v.lobby_enabled?t.lobby_on:t.lobby_off;
 $("lobby-toggle").textContent=v.lobby_enabled?t.lobby_turn_off:t.lobby_turn_on;
}
$("admit-all").addEventListener("click",async()=>{for(const w of (view&&view.waiting)||[])await call("/lobby/"+encodeURIComponent(w.id)+"/admit");});
$("lock").addEventListener("click",()=>call("/lock"));
$("unlock").addEventListener("click",()=>call("/unlock"));
$("suspend").addEventListener("click",async()=>{if(await confirmAsk(t.confirm_suspend,false))call("/suspend");});
$("passcode").addEventListener("submit",async e=>{e.preventDefault();const i=$("pc-input");if(await call("","PUT",{passcode:i.value})){i.value="";say(t.passcode_saved);}});
$("pc-clear").addEventListener("click",async()=>{if(await confirmAsk(t.confirm_clear,false)&&await call("","PUT",{passcode:""}))say(t.passcode_cleared);});
// Capacity and the waiting room are settings: PUT rooms/{room}, as an app
// would change them (same host check, same room.update audit record).
$("capacity").addEventListener("submit",async e=>{e.preventDefault();const n=parseInt($("cap-input").value,10);if(n>0&&await call("","PUT",{capacity:n}))say(t.capacity_saved.replace("%d",n));});
$("lobby-toggle").addEventListener("click",async()=>{if(!view)return;const on=!view.lobby_enabled;if(await call("","PUT",{lobby_enabled:on}))say(on?t.lobby_on:t.lobby_off);});
// Recent events and the end-to-end state: read again after each change of
// the room (at most once a second), never on a timer.
let activityDue=null;
function activitySoon(){if(activityDue)return;activityDue=setTimeout(async()=>{activityDue=null;await loadActivity();},1000);}
function eventText(e){
 const who=e.who||t.someone,by=e.by||t.someone;
 let key="ev_"+e.event.replace(/[^a-z_]/g,"_");
 if(e.event==="admission.decision")key+="_"+(e.decision||"deny");
 const text=(t[key]||e.event).replace("{who}",who).replace("{by}",by);
 return e.reason?text+" ("+e.reason+")":text;
}
async function loadActivity(){
 const r=await fetch(api+"/activity",{credentials:"same-origin",headers:{"Accept":"application/json"}}).catch(()=>null);
 if(!r||!r.ok)return;
 const a=await r.json();
 const ol=$("recent");ol.replaceChildren();
 for(const e of a.events||[]){
  const li=el("li");const tm=el("time","muted",new Date(e.at).toLocaleTimeString());tm.dateTime=e.at;
  li.append(tm," ",eventText(e));ol.append(li);
 }
 $("recent-empty").hidden=(a.events||[]).length>0;
 if(!a.events_available)$("recent-empty").textContent=t.recent_unavailable;
 const x=a.e2ee;
 $("e2ee-facts").hidden=!(x&&x.active);
 $("e2ee-state").textContent=!x?t.e2ee_off:(x.active?t.e2ee_on:t.e2ee_waiting);
 if(x&&x.active){$("e2ee-epoch").textContent=String(x.epoch||0);$("e2ee-members").textContent=String(x.members);}
}
// The security code and client alarms exist only in clients: the host's
// own meeting page in this browser may tell this page (same origin) on the
// "meetguard-e2ee" channel, {room, epoch, code, alarms, alarm}; {ask: room}
// asks a meeting page opened before this console to post its last notice.
if(window.BroadcastChannel){
 const bc=new BroadcastChannel("meetguard-e2ee");
 bc.addEventListener("message",m=>{
  const d=m.data||{};if(d.room!==room)return;
  if(typeof d.code==="string"&&d.code)$("e2ee-code").textContent=d.code+(d.epoch?" · "+t.e2ee_epoch_n.replace("%d",d.epoch):"");
  if(typeof d.alarm==="string"&&d.alarm){const al=$("e2ee-alarm");al.hidden=false;al.textContent=t.e2ee_alarm.replace("%s",d.alarm);}
 });
 bc.postMessage({ask:room});
}
loadActivity();
const es=new EventSource(api+"/events");
es.addEventListener("open",()=>{$("conn").textContent=t.live;});
es.addEventListener("room",e=>{$("conn").textContent=t.live;draw(JSON.parse(e.data));activitySoon();});
es.addEventListener("ended",()=>{es.close();$("conn").textContent=t.ended;});
es.addEventListener("error",()=>{if(es.readyState!==EventSource.CLOSED)$("conn").textContent=t.reconnecting;});
})();
