// Package printersim simulates the device side of a receipt printer: an
// ESC/POS thermal printer on a serial line, faithful enough that the
// devices/escpos driver runs unchanged against it (over a pty made by
// firmwaresim.OpenPTY, or one end of a net.Pipe).
//
// # Line
//
// Bytes are taken as a UART at Options.Baud would deliver them, 10 bits a
// byte, and answers leave at the same pace. Real-time status queries
// (DLE EOT n, n = 1 printer, 2 offline cause, 3 error cause, 4 paper
// sensors) are answered with one status byte the moment they arrive, as a
// real printer does: in the middle of a job, while the printer is offline,
// even inside another command's data. Other values of n get no answer.
//
// # Printing
//
// Everything else goes through an escpos.Decoder as the printer's command
// interpreter. While the printer is offline (cover open, paper out) it
// prints nothing: received bytes wait, and print once it is back online.
// Each cut ends a receipt, which is kept (Receipts) and, with
// Options.Dir, written as receipt-NNNN.txt, its text rendering (RenderText),
// and receipt-NNNN.png, the paper as printed (RenderImage). Numbering
// continues after the receipts already in the directory.
//
// # Faults
//
// SetPaper (near end, out), SetCover and SetMute (no status answers, as a
// printer whose real-time commands are disabled) hold until changed;
// InjectGarbage applies once, before the next status answer.
package printersim
