// Package reader simulates the device side of onecard's reader fleet
// protocol (docs/mqtt.md): a gate reader, turnstile or door controller that
// holds the whitelists of its zones, decides alone when a card is
// presented, numbers and queues its events, and talks to the server over
// MQTT, faithfully enough that the fleet service runs unchanged against it.
// Many readers run in one process (Fleet) for load tests.
//
// # Connection
//
// Each Reader is one MQTT 3.1.1 client (client id = username = device id)
// with a clean session (what it missed while away comes from the server
// after its birth), keep-alive 30 s and QoS 1 everywhere. Run connects, reconnecting after a loss with jittered
// exponential backoff from 200 ms to 10 s. Every connection attempt takes a
// new session number (persisted first), set in the last will
// {"state":"offline","session":n} retained on dev/<id>/state. Once
// connected the reader subscribes (proto.Topics.DeviceSubscriptions) and
// only then publishes its retained birth, so a snapshot the server sends in
// answer to the birth cannot arrive before the subscription. Then it replays
// every event not yet acknowledged. A clean stop (Run's context ends, or a
// reboot command) publishes the offline state itself before DISCONNECT, so
// a reader going away on purpose is seen offline too; PowerLoss and Offline
// close the socket without DISCONNECT, and the broker publishes the will.
//
// Incoming messages are handled one at a time, in arrival order, by one
// goroutine per reader: paho's handler only appends them to a queue, so it
// never blocks. (The client keeps paho's in-order dispatch: with
// SetOrderMatters(false) paho runs every message on its own goroutine, and
// changes 2 and 3 arriving back to back could be handled 3 first, which
// looks like a gap.) Nothing the reader does waits on the connection:
// what it sends (acknowledgements, sync requests, births, events) is
// handed to a writer of the connection's own, which calls paho, because
// paho's Publish can wait its whole write timeout (10 s) on a connection
// that is jammed or going down.
//
// # State and persistence
//
// The whitelists, the applied sequence of each zone, the session number,
// the event sequence and queue, the site configuration and the ids of
// recently run commands are kept in Options.StateFile, as one JSON document
// written to a temporary file and renamed over the old one (atomic against
// a crash of the process; Options.Fsync also syncs file and directory,
// against a crash of the machine). With SaveEvery zero (the default) the
// file is written after every change and before the reader acts on it: a
// whitelist change is saved before it is acknowledged, an event before it
// is published, a command id before the command runs. Writing the whole
// document costs time proportional to the whitelists; for benchmarks of
// many readers with large whitelists, SaveEvery > 0 writes at most once per
// period instead (and at PowerLoss and when Run returns), at the price that
// a crash of the simulator process itself may lose the last period. An
// empty StateFile keeps everything in memory.
//
// # Faults
//
// PowerLoss drops the connection abruptly and loses the clock: until
// SetClock(true) the reader's time is the last time it saved its state plus
// its uptime since the power came back, and its events and birth say
// "clock":"unset". Offline(true) is the network going down: the connection
// drops and stays down until Offline(false); cards presented meanwhile are
// still decided and their events queue.
//
// # Gate terminal
//
// A reader also plays a gate terminal (docs/mqtt.md, Gate terminals).
// ScanPass queues a pass_scan event and waits up to Options.VerdictWait
// for the server's verdict command answering that event's seq (verdicts
// for other scans, expired ones and repeated ids are ignored; a verdict
// never opens the relay). With none in time, or at once when not
// connected, it decides itself from the pass keys of the last
// configuration (passcode.Parse, Check with passcode.DefaultSkew,
// CheckGate with its zone) and the passes it released itself, and marks
// the verdict Offline; with no pass keys it says ReasonNoKeys. ReleasePass
// and MismatchPass queue pass_release and pass_mismatch; a release is
// remembered in the state file, so the same pass scanned again offline,
// even after a power loss or restart, is refused as used.
package reader
