package printersim_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"onecard/devices/escpos"
	printersim "onecard/firmware-sim/printer"
)

// A status query and a receipt sent by hand over net.Pipe.
func Example() {
	host, dev := net.Pipe()
	defer host.Close()
	sim := printersim.New(printersim.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sim.Serve(ctx, dev) }()

	host.Write(escpos.StatusQuery(escpos.QueryPaper))
	answer := make([]byte, 1)
	io.ReadFull(host, answer)
	fmt.Printf("paper sensor: %02X\n", answer[0])

	job, _ := new(escpos.Builder).Init().
		Align(escpos.Center).Bold(true).Line("收据").
		Bold(false).Align(escpos.Left).Line("No.0001").
		Align(escpos.Center).QR("R-0001", 4, escpos.QRLevelM).
		Cut(escpos.PartialCut).Bytes()
	host.Write(job)
	receipts, _ := sim.WaitReceipts(ctx, 1)
	fmt.Print(receipts[0].Text)

	cancel()
	<-done
	// Output:
	// paper sensor: 12
	//                       **收据**
	// No.0001
	//                   [QR: R-0001]
	// ----------------- partial cut ------------------
}
