// Package payterm drives a bank-card payment terminal on a serial port
// with onecard's own framed protocol (docs/payterm.md): the frame codec
// (Encode, Decode), the messages (Marshal, Unmarshal, parsed strictly) and
// a driver, Terminal, that sells, queries, cancels and asks for the
// terminal's status.
//
// The driver knows bytes and outcomes only: what a payment is for, its
// receipt and its place in the books are the billing package's concern.
// It never guesses an outcome: a sale whose answer was lost is queried by
// its reference, and when even that fails the caller gets State Unknown
// and an error wrapping ErrUnknownOutcome, to resolve later with Query.
package payterm
