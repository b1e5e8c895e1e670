// Package web is the gateway's one web layer: the embedded templates and
// static assets of every page the gateway serves (refusals, sign-in and
// sign-out pages, the waiting room, the host console, and the looks of the
// development identity provider and demo app), the one message catalog
// those pages speak from (English and Vietnamese), the Content-Security-
// Policy and security headers every page is sent with, and the CSRF/Origin
// rule for state-changing browser requests.
//
// A page never runs code the CSP has not named: scripts and the style
// sheet are files under static/, inlined into the page and admitted by
// their SHA-256 hash, so there is no 'unsafe-inline', no CDN and nothing to
// cache-bust. What differs per request reaches a script through data-
// attributes and a JSON block (type application/json, which browsers never
// execute), so a script's hash never changes.
//
// Adding a page: write templates/NAME.html ({{define "NAME"}} using the
// "head" and "foot" templates), put its script (hand-written, or an
// esbuild bundle written here by web/build.mjs) in static/, its strings in
// every messages/*.json, and call Pages.Render with View{Template: "NAME",
// Script: "NAME.js"}. Adding a language: add messages/<BCP 47 tag>.json
// with every key of messages/en.json (TestCatalog_EveryLanguageHasEveryKey
// says which are missing).
//
// The package never decides who may see a page: callers authorize first.
package web
