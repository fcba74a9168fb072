// Package auth owns staff accounts, roles, login sessions, API tokens and
// the audit log. It knows nothing of HTTP: the web package turns cookies and
// bearer headers into an Actor with the functions here.
package auth
