// Package passcode is the signed QR code of a move-out gate pass: the pass
// number, the gate it opens and its validity window, signed with the site's
// Ed25519 pass key, so a gate terminal holding only the public key checks it
// even while offline. docs/passcode.md has the byte layout for third-party
// terminals.
//
// The desk signs a pass with Sign and prints the text as a QR code. A guard's
// terminal reads it back with Verify, or with Parse (is it genuine?) and then
// Claims.Check and Claims.CheckGate (is it good here and now?), so the server
// can tell a forged code from an expired one. Every refusal wraps one of the
// sentinel errors, which a guard screen turns into a reason.
//
// The package is pure: no database, no files, no clock of its own. Whether a
// genuine pass was since cancelled or already used is the server's question,
// and so is looking up a pass number a guard types by hand (LooksLikeCode
// tells a scanned code from a typed number).
package passcode
