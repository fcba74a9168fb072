// Package scannersim simulates the device side of a serial barcode scanner
// in batch use: the desk clerk scanning couriers' tracking numbers one
// after another. The devices/scanner driver runs unchanged against it, over
// a pty made by firmwaresim.OpenPTY or one end of a net.Pipe.
//
// # Line
//
// Each code given to Scan goes out as a scanner sends it: Options.Prefix
// (an AIM symbology identifier, if the scanner is set to send one), the
// code, then Options.Suffix (CR LF by default). Bytes leave at the pace of
// a UART at Options.Baud, 10 bits a byte (8N1), and Options.Gap after each
// code, before the next, stands for the clerk reaching for the next
// parcel. The scanner sends and never reads: it takes no commands.
//
// # Faults
//
// InjectGarbage queues raw bytes, sent in turn with the codes, as line
// noise or a scanner set to another speed would deliver them.
package scannersim
