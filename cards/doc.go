// Package cards owns the one-card: the credential written on a MIFARE
// Classic card (layout, MAC, per-card keys, access bits), the site's card
// keys, and the encoder operations that issue, read and wipe a card on the
// desk encoder. The card lifecycle (apply, issue, lost, replace, return)
// builds on it. docs/card-format.md describes the format.
package cards
