package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// URL is the gateway API's base URL, e.g. https://pay.example.com or
	// http://127.0.0.1:8460 (the simulator).
	URL string
	// Merchant is our merchant id at the gateway.
	Merchant string
	// Key is our merchant key: it signs our requests. The gateway knows
	// its public half.
	Key ed25519.PrivateKey
	// GatewayKeys are the gateway's public keys: its responses and
	// notifications must be signed by one of them (more than one while the
	// gateway rotates its key).
	GatewayKeys []ed25519.PublicKey
	// Window is how far a timestamp may be from our clock; zero means
	// DefaultWindow.
	Window time.Duration
	// HTTP makes the requests; nil means a client with a 15 s timeout.
	HTTP *http.Client
}

// Client is the Provider of the gateway API in docs/gateway.md. Its
// methods are safe for concurrent use.
type Client struct {
	base     *url.URL
	merchant string
	key      ed25519.PrivateKey
	keys     map[string]ed25519.PublicKey // by KeyID
	window   time.Duration
	http     *http.Client
}

var _ Provider = (*Client)(nil)

// NewClient checks c and returns a client.
func NewClient(c Config) (*Client, error) {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("gateway: URL %q: want http(s)://host[:port][/path]", c.URL)
	case !validMerchant(c.Merchant):
		return nil, fmt.Errorf("gateway: merchant id %q: want 1 to 64 letters, digits, '-' or '_'", c.Merchant)
	case len(c.Key) != ed25519.PrivateKeySize:
		return nil, errors.New("gateway: no merchant key")
	case len(c.GatewayKeys) == 0:
		return nil, errors.New("gateway: no gateway public key")
	case c.Window < 0:
		return nil, errors.New("gateway: negative window")
	}
	cl := &Client{base: u, merchant: c.Merchant, key: c.Key, keys: map[string]ed25519.PublicKey{}, window: c.Window, http: c.HTTP}
	for _, k := range c.GatewayKeys {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("gateway: a gateway public key is not Ed25519")
		}
		cl.keys[KeyID(k)] = k
	}
	if cl.window == 0 {
		cl.window = DefaultWindow
	}
	if cl.http == nil {
		cl.http = &http.Client{Timeout: 15 * time.Second}
	}
	cl.base.Path = strings.TrimSuffix(cl.base.Path, "/")
	cl.base.RawPath = ""
	return cl, nil
}

func validMerchant(m string) bool { return validID(m, 64) }

// Merchant returns our merchant id.
func (c *Client) Merchant() string { return c.merchant }

// Create opens an order (see Provider).
func (c *Client) Create(ctx context.Context, o Order) (Created, error) {
	now := time.Now()
	if o.ExpiresAt.IsZero() {
		o.ExpiresAt = now.Add(DefaultExpiry)
	}
	o.ExpiresAt = o.ExpiresAt.UTC().Truncate(time.Second)
	if err := CheckOrder(o, now); err != nil {
		return Created{}, err
	}
	body, _ := json.Marshal(CreateRequest{Ref: o.Ref, AmountFen: o.AmountFen, Subject: o.Subject, NotifyURL: o.NotifyURL, ExpiresAt: o.ExpiresAt})
	var ob OrderBody
	if err := c.do(ctx, http.MethodPost, "/v1/orders", body, &ob); err != nil {
		return Created{}, fmt.Errorf("gateway: create %s: %w", o.Ref, err)
	}
	st, err := ob.status(o.Ref)
	switch {
	case err != nil:
		return Created{}, fmt.Errorf("gateway: create %s: %w", o.Ref, err)
	case st.State != StatePending:
		return Created{}, fmt.Errorf("gateway: create %s: %w: order is %s", o.Ref, ErrMalformed, st.State)
	case st.AmountFen != o.AmountFen:
		return Created{}, fmt.Errorf("gateway: create %s: %w: order of %d fen, asked %d", o.Ref, ErrMalformed, st.AmountFen, o.AmountFen)
	}
	if u, err := url.Parse(ob.QRContent); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Created{}, fmt.Errorf("gateway: create %s: %w: QR content %q is not a URL", o.Ref, ErrMalformed, ob.QRContent)
	}
	return Created{QRContent: ob.QRContent, ProviderTxn: ob.Txn, ExpiresAt: ob.ExpiresAt.UTC()}, nil
}

// Query asks what the gateway knows about ref (see Provider).
func (c *Client) Query(ctx context.Context, ref string) (Status, error) {
	return c.order(ctx, http.MethodGet, ref, "")
}

// Close ends a pending order (see Provider).
func (c *Client) Close(ctx context.Context, ref string) (Status, error) {
	return c.order(ctx, http.MethodPost, ref, "/close")
}

func (c *Client) order(ctx context.Context, method, ref, suffix string) (Status, error) {
	op := "query"
	if suffix != "" {
		op = suffix[1:]
	}
	if !ValidRef(ref) {
		return Status{}, fmt.Errorf("gateway: %s: %w: ref %q", op, ErrMalformed, ref)
	}
	var ob OrderBody
	err := c.do(ctx, method, "/v1/orders/"+ref+suffix, nil, &ob)
	var ge *Error
	if errors.As(err, &ge) && ge.HTTPStatus == http.StatusNotFound && ge.Code == "not_found" {
		return Status{State: StateNotFound}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("gateway: %s %s: %w", op, ref, err)
	}
	st, err := ob.status(ref)
	if err != nil {
		return Status{}, fmt.Errorf("gateway: %s %s: %w", op, ref, err)
	}
	return st, nil
}

// do sends a signed request and checks the signed answer: a 2xx is
// decoded into out, anything else is an *Error.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	now := time.Now().Unix()
	nonce := NewNonce()
	req.Header.Set(HeaderMerchant, c.merchant)
	Sign(c.key, now, nonce, RequestMessage(method, req.URL.RequestURI(), c.merchant, now, nonce, body)).Set(req.Header)

	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return err
	}
	if len(rb) > MaxBody {
		return fmt.Errorf("%w: response over %d bytes", ErrMalformed, MaxBody)
	}
	if err := c.checkResponse(resp, nonce, rb); err != nil {
		return fmt.Errorf("response (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if err := json.Unmarshal(rb, &eb); err != nil || eb.Code == "" {
			eb.Code = "http_" + fmt.Sprint(resp.StatusCode)
		}
		return &Error{HTTPStatus: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	}
	return decode(rb, out)
}

// checkResponse verifies a response's signature: by a gateway key, over
// our request's nonce, the status and the body, within the window.
func (c *Client) checkResponse(resp *http.Response, reqNonce string, body []byte) error {
	s, err := ReadSignature(resp.Header)
	if err != nil {
		return err
	}
	pub, ok := c.keys[s.KeyID]
	if !ok {
		return fmt.Errorf("%w: key %s", ErrUnknownKey, s.KeyID)
	}
	return s.Check(pub, ResponseMessage(reqNonce, resp.StatusCode, s.Timestamp, s.Nonce, body), time.Now(), c.window)
}

// Verify checks a notification: its headers and body exactly as received
// (see Provider). The same notification delivered again within the window
// verifies again: apply it idempotently, by ProviderTxn.
func (c *Client) Verify(header http.Header, body []byte) (Notification, error) {
	s, err := ReadSignature(header)
	if err != nil {
		return Notification{}, err
	}
	pub, ok := c.keys[s.KeyID]
	if !ok {
		return Notification{}, fmt.Errorf("%w: key %s", ErrUnknownKey, s.KeyID)
	}
	if len(body) > MaxBody {
		return Notification{}, fmt.Errorf("%w: body of %d bytes", ErrMalformed, len(body))
	}
	if err := s.Check(pub, NotificationMessage(s.Timestamp, s.Nonce, body), time.Now(), c.window); err != nil {
		return Notification{}, err
	}
	return ParseNotification(body, c.merchant)
}
