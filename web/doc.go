// Package web is the HTTP plumbing the api and desk packages share: route
// registration with the roles each route allows, session and token
// authentication, CSRF, error mapping, translations, metrics and logs.
package web
