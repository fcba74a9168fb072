// Command onecard runs an estate's customer-service back office.
package main

import (
	"fmt"
	"os"

	"onecard/fault"
	"onecard/web"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		// Domain errors carry a code; say it in words.
		if fe, ok := fault.As(err); ok {
			fmt.Fprintf(os.Stderr, "onecard: %s (%s)\n", web.T("en", "err."+fe.Code, fe.Args), fe.Code)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "onecard:", err)
		os.Exit(1)
	}
}
