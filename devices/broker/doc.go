// Package broker is onecard's MQTT side for the reader fleet
// (docs/mqtt.md): the broker embedded in onecard (mochi-mqtt) with its
// logins and ACL, device secrets hashed as Mosquitto hashes them, and the
// password, ACL and configuration files of an external Mosquitto that
// enforces the same rules.
//
// Both brokers apply proto.Topics.Allowed: a device logs in as itself
// (client id = username = device id) and may publish only to its own
// state, ack, sync and evt topics and subscribe only to its own wl, snap,
// evtack and cmd, the site's config and its zones' broadcasts, by exact
// name. A refused publish is acknowledged and dropped, never delivered,
// as Mosquitto does, and counted (Stats).
//
// The onecard server connects like any client, over TCP with paho, as a
// principal of role server: the Authenticator recognises its username
// and a password made at random for the process (the embedded broker), or
// a user of the password file (Mosquitto). One code path thus serves both
// brokers. mochi's inline client is not used: it bypasses the ACL, has no
// session, and would make the fleet service depend on which broker runs.
package broker
