// Package devices holds what the estate's hardware drivers share: serial
// ports that come and go, and the small device interfaces domain services
// depend on (a MIFARE card antenna, later a printer, a locker board). The
// drivers themselves live in subpackages (pn532, …) and know bytes, not
// business.
package devices
