// Package paytermsim simulates the device side of the bank-card payment
// terminal: a terminal speaking onecard's framed protocol (docs/payterm.md)
// faithfully enough that the devices/payterm driver runs unchanged against
// it, over a pty (firmwaresim.OpenPTY) or a net.Pipe.
//
// # Link
//
// Every frame with a good CRC and ETX is ACKed, a damaged one NAKed. A
// request is executed, and what it changes written to the journal, before
// its ACK; then comes its answer, or for a SALE the outcome once the
// customer is done. Answers wait for the host's ACK and are sent again
// after a NAK or the ACK timeout, Retries times. A request repeated (same
// TYPE, SEQ and body within 3 s) is ACKed again and not executed twice.
// Output is paced at the baud rate.
//
// # Sales
//
// One sale at a time: another SALE meanwhile is answered BUSY. A SALE
// under a reference already in the journal returns that sale's outcome
// (or IN_PROGRESS) and never charges again; under another amount it is an
// ERROR 06. The customer presents the card after the customer delay;
// the mode (Approve, Decline, Timeout, PowerLoss, Garbage) decides what
// happens then. CANCEL stops a sale still waiting for the card (DECLINED
// C1, sent both as the CANCEL's answer and as the SALE's outcome) and
// voids an approved one.
//
// # Journal
//
// The last Options.JournalSize sales, by reference, with the trace and
// batch counters, in memory or in Options.JournalFile (JSON, replaced
// atomically on every change) so that they survive a restart of the
// simulator. A sale found in progress when the file is read was cut off by
// the restart and is settled as declined, reason P0.
package paytermsim
