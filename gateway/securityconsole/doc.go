// Package securityconsole is the gateway's read-only security and audit
// console (/.meetguard/security/): what the policy decided and why (the
// decisions page and its denial hot spots), the story of one meeting (the
// rooms page, the same content as `meetguard audit report`, exportable as
// Markdown and JSON), and what a candidate policy would change (the
// what-if page: logged decisions replayed under an uploaded candidate), for
// the security team and auditors.
//
// Who may open it is the policy's answer to data.meetguard.console.access
// (policies/console.rego, roles in data.json; default nobody); everyone
// else gets one uniform refusal for every console path, so the console
// does not reveal what it holds. Every request, allowed or refused, is an
// audit record (console.view).
//
// The console must never change anything: no policy activation, no room
// action. It only reads the audit log and asks the policy engine; a
// what-if's candidate is built beside the serving policy and never served.
package securityconsole
