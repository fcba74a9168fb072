// Package fleet is the server side of the reader fleet (docs/mqtt.md): the
// device registry and its credentials, zones and their numbered whitelist
// changes, the outbox that publishes them, acknowledgements, catch-up by
// resend or snapshot, and the access events devices report, stored once.
package fleet
