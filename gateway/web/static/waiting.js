(()=>{
"use strict";
// The waiting room, the refusal and the removed page. Waiting, it
// long-polls GET rooms/{room}/wait/{wait_id}; when a host admits, that
// answer sets the ticket cookie and the page reloads into the meeting.
// Refused, it offers the passcode field (offered on every refusal, so a
// passcode room cannot be told apart from a missing one). Every string it
// shows comes from the page's data-t-* attributes, in the page's language.
const root=document.getElementById("mg"),msg=document.getElementById("msg"),form=document.getElementById("pc"),title=document.getElementById("title");
const t=root.dataset;
// The API's messages are English; the shipped policy's ones have a
// translation in the page's language (a team's own words stay as written).
const policyText=JSON.parse(document.getElementById("mg-policy").textContent||"{}");
const tr=m=>(m&&Object.prototype.hasOwnProperty.call(policyText,m))?policyText[m]:m;
const api="/.meetguard/api/v1/rooms/"+encodeURIComponent(t.room);
let wait=t.wait||"";
const sleep=ms=>new Promise(r=>setTimeout(r,ms));
function done(text,heading){msg.textContent=text;wait="";root.dataset.state="done";if(heading){title.textContent=heading;document.title=heading;}}
async function poll(){
 for(let fails=0;wait;){
  let r;
  try{r=await fetch(api+"/wait/"+encodeURIComponent(wait)+"?timeout=25",{headers:{"Accept":"application/json"},cache:"no-store",credentials:"same-origin"});}
  catch(e){await sleep(Math.min(30000,1000*2**Math.min(fails++,5)));continue;}
  fails=0;
  if(r.status===200){const b=await r.json();if(b.status==="admitted"){location.reload();return;}continue;}
  if(r.status===429||r.status>=500){await sleep(5000);continue;}
  const b=await r.json().catch(()=>({}));
  if(b.status==="denied"){done(t.tHostDeniedText,t.tHostDenied);return;}
  done(tr(b.message)||t.tGone);
 }
}
async function join(body){
 msg.textContent=t.tChecking;
 let r;
 try{r=await fetch(api+"/join",{method:"POST",headers:{"Content-Type":"application/json","Accept":"application/json","Meetguard-CSRF":"1"},credentials:"same-origin",body:JSON.stringify(body)});}
 catch(x){msg.textContent=t.tUnreachable;return;}
 const b=await r.json().catch(()=>({}));
 if(r.status===200){location.reload();return;}
 if(r.status===202){wait=b.wait_id;if(form)form.hidden=true;if(again)again.hidden=true;root.dataset.state="waiting";msg.textContent=tr(b.message)||t.tWait;poll();return;}
 if(r.status===429){const s=parseInt(r.headers.get("Retry-After")||"",10);msg.textContent=(tr(b.message)||t.tDenied)+(s>0?" "+t.tRetry.replace("%d",String(s)):"");return;}
 msg.textContent=tr(b.message)||t.tDenied;
}
const again=document.getElementById("again");
if(form){form.addEventListener("submit",e=>{e.preventDefault();join({passcode:form.elements.passcode.value});});}
if(again){again.addEventListener("click",()=>join({}));}
poll();
})();
