package pn532_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"onecard/devices"
	"onecard/devices/pn532"
)

// Reading a block of a card on the desk encoder.
func Example() {
	port, err := devices.OpenSerial(devices.SerialConfig{Path: "/dev/ttyUSB0"})
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	d := pn532.New(port, nil)
	defer d.Close()

	ctx := context.Background()
	if err := d.Init(ctx); err != nil {
		log.Fatal(err)
	}
	uid, err := d.Select(ctx)
	if errors.Is(err, devices.ErrNoCard) {
		fmt.Println("put a card on the encoder")
		return
	} else if err != nil {
		log.Fatal(err)
	}
	defer d.Release(ctx)
	transport := [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	if err := d.Auth(ctx, 4, false, transport, uid); errors.Is(err, devices.ErrAuth) {
		// The card has halted: Select it again before trying another key.
		fmt.Println("not a blank card")
		return
	} else if err != nil {
		log.Fatal(err)
	}
	block, err := d.ReadBlock(ctx, 4)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("card % X block 4: % X\n", uid, block)
}
