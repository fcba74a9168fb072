// Package gatewaysim simulates an online payment gateway: the other end of
// onecard's gateway.Client, speaking the API of docs/gateway.md faithfully
// enough that the client runs unchanged against it, on 127.0.0.1.
//
// # API
//
// POST /v1/orders creates an order, GET /v1/orders/{ref} queries one,
// POST /v1/orders/{ref}/close closes one. Every request must be signed by a
// merchant in Options.Merchants, within the window, with a nonce not seen
// before; every answer, refusals included, is signed with the gateway's key.
//
// # The payer's side
//
// An order's QR content is BaseURL/pay/{txn}: a small page, as a phone
// wallet would show it, with 支付 ¥x.xx and 取消. Pressing pay marks the
// order paid; cancel closes it. Pay and Close do the same from a test or a
// console. An order past its ExpiresAt closes by itself (without a
// notification).
//
// # Notifications
//
// After a payment (and a close by the payer or by Close), the gateway
// POSTs a signed notification to the order's NotifyURL, and again, with
// backoff, until it gets a 2xx or has tried Options.Attempts times. Each
// retry is signed afresh. Faults on demand: SetTwice delivers each
// notification a second time, byte for byte, after its 2xx; SetLate holds
// the first delivery back for a while and sends it with the signature made
// at payment time (as a message replayed late would be); SetBadSig
// damages the signature of every delivery while it is on. Deliveries lists
// every attempt.
//
// State is in memory only.
package gatewaysim
