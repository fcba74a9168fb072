// Package gateway takes QR-code payments through an online payment gateway:
// the kind an owner pays by scanning a code with a phone wallet. onecard's
// books use a gateway through Provider: Create an order under our own
// payment reference and show its QR content; the owner pays on the phone;
// the gateway tells us by a signed notification (Verify), and Query answers
// what the gateway knows about a reference at any time, so a notification
// that never arrives is resolved by asking, never by guessing. Close ends an
// order the owner walked away from.
//
// Client is the Provider of the gateway API written up in docs/gateway.md
// (JSON over HTTP, every message signed with Ed25519); the simulated gateway
// in firmware-sim/gateway speaks it, and so would a thin proxy in front of
// a real provider. An adapter for a real provider's own API implements
// Provider the same way.
//
// # Notifications
//
// A notification is signed by the gateway over its timestamp, a nonce and
// the body. Verify refuses one with a bad or missing signature, an altered
// body, a key it does not know, a timestamp outside the window (an old one
// replayed later), or fields that are malformed. It does not refuse the same
// notification delivered twice within the window: gateways deliver at least
// once, so the receiver must apply notifications idempotently, keyed on
// Notification.ProviderTxn, and check the amount against its own payment.
// NotifyHandler is such a receiver's HTTP side.
package gateway
