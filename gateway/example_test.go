package gateway_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	gatewaysim "onecard/firmware-sim/gateway"
	"onecard/gateway"
)

// A QR-code payment from end to end, against the simulated gateway.
func Example() {
	ctx := context.Background()
	merchantKey := gateway.GenerateKey()
	sim, err := gatewaysim.Start(gatewaysim.Options{
		Merchants: map[string]ed25519.PublicKey{"estate-1": merchantKey.Public().(ed25519.PublicKey)},
	})
	if err != nil {
		panic(err)
	}
	defer sim.Stop()
	client, err := gateway.NewClient(gateway.Config{
		URL: sim.URL(), Merchant: "estate-1", Key: merchantKey,
		GatewayKeys: []ed25519.PublicKey{sim.PublicKey()},
	})
	if err != nil {
		panic(err)
	}

	// onecard's notification endpoint; apply records the payment once per
	// ProviderTxn (here, it only hands it over).
	paid := make(chan gateway.Notification, 1)
	srv := httptest.NewServer(gateway.NotifyHandler(client, func(_ context.Context, n gateway.Notification) error {
		paid <- n
		return nil
	}, nil))
	defer srv.Close()

	c, err := client.Create(ctx, gateway.Order{Ref: "P2601010001", AmountFen: 12345,
		Subject: "3-1-502 物业服务费 2026-01", NotifyURL: srv.URL + "/gateway/notify"})
	if err != nil {
		panic(err)
	}
	fmt.Println("QR code:", strings.HasPrefix(c.QRContent, sim.URL()+"/pay/"))

	sim.Pay(c.ProviderTxn) // the owner pays on the phone
	select {
	case n := <-paid:
		fmt.Println("notified:", n.Ref, n.State, n.AmountFen, n.ProviderTxn == c.ProviderTxn)
	case <-time.After(5 * time.Second):
		fmt.Println("no notification")
	}
	st, err := client.Query(ctx, "P2601010001")
	fmt.Println("query:", st.State, err)
	// Output:
	// QR code: true
	// notified: P2601010001 paid 12345 true
	// query: paid <nil>
}
