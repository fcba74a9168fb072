package gatewaysim

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"onecard/gateway"
)

// page is what a phone wallet shows after scanning the QR code.
var page = template.Must(template.New("pay").Funcs(template.FuncMap{"yuan": gateway.Yuan}).Parse(`<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Order}}¥{{yuan .Order.AmountFen}}{{else}}订单不存在{{end}} · 模拟支付网关</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
.amount { font-size: 2.4rem; margin: .5rem 0 1.5rem; }
.note { color: #777; font-size: .9rem; }
button { display: block; width: 100%; font-size: 1.2rem; padding: .8rem; margin: .6rem 0; border-radius: .5rem; border: 1px solid #ccc; }
button.pay { background: #1aad19; color: #fff; border-color: #1aad19; }
.state { font-size: 1.6rem; margin: 1.5rem 0; }
</style>
</head>
<body>
{{with .Order}}
<p class="note">模拟支付网关 · 商户 {{.Merchant}}</p>
<h1>{{.Subject}}</h1>
<p class="amount">¥{{yuan .AmountFen}}</p>
{{if eq .State "pending"}}
<form method="post">
<button class="pay" type="submit" formaction="/pay/{{.Txn}}/pay">支付 ¥{{yuan .AmountFen}}</button>
<button class="cancel" type="submit" formaction="/pay/{{.Txn}}/cancel">取消</button>
</form>
<p class="note">请在 {{$.Expires}} 前支付</p>
{{else if eq .State "paid"}}
<p class="state" id="state">支付成功</p>
<p class="note">{{$.PaidAt}} · 交易号 {{.Txn}}</p>
{{else if eq .ClosedBy "expired"}}
<p class="state" id="state">订单已过期</p>
{{else}}
<p class="state" id="state">订单已关闭</p>
{{end}}
{{else}}
<p class="state" id="state">订单不存在</p>
{{end}}
{{with .Err}}<p class="note">{{.}}</p>{{end}}
</body>
</html>
`))

// index lists the orders, linking to their pay pages: a phone's camera
// stands in for the QR code.
var index = template.Must(template.New("index").Funcs(template.FuncMap{"yuan": gateway.Yuan}).Parse(`<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>模拟支付网关</title></head>
<body style="font-family: system-ui, sans-serif">
<h1>模拟支付网关</h1>
<table>
<tr><th>交易号</th><th>商户</th><th>订单号</th><th>金额</th><th>状态</th></tr>
{{range .}}<tr><td><a href="/pay/{{.Txn}}">{{.Txn}}</a></td><td>{{.Merchant}}</td><td>{{.Ref}}</td><td>¥{{yuan .AmountFen}}</td><td>{{.State}}</td></tr>
{{else}}<tr><td colspan="5">还没有订单</td></tr>
{{end}}</table>
</body>
</html>
`))

var shanghai = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("CST", 8*3600)
}()

func (s *Sim) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	index.Execute(w, s.Orders())
}

func (s *Sim) payPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r.PathValue("txn"), http.StatusOK, "")
}

func (s *Sim) render(w http.ResponseWriter, txn string, status int, msg string) {
	data := struct {
		Order           *Order
		Expires, PaidAt string
		Err             string
	}{Err: msg}
	if o, ok := s.Find(txn); ok && o.Txn == txn {
		data.Order = &o
		data.Expires = o.ExpiresAt.In(shanghai).Format("2006-01-02 15:04:05")
		data.PaidAt = o.PaidAt.In(shanghai).Format("2006-01-02 15:04:05")
	} else if status == http.StatusOK {
		status = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	page.Execute(w, data)
}

// payAction is a press of 支付 or 取消: then back to the page, which says
// what happened (POST, redirect, GET).
func (s *Sim) payAction(w http.ResponseWriter, r *http.Request) {
	txn := r.PathValue("txn")
	var err error
	if strings.HasSuffix(r.URL.Path, "/pay") {
		_, err = s.Pay(txn)
	} else {
		_, err = s.closeOrder(txn, "payer")
	}
	switch {
	case errors.Is(err, ErrNotFound):
		s.render(w, txn, http.StatusNotFound, "")
	case err != nil: // not pending: the page shows what it is
		s.render(w, txn, http.StatusConflict, "")
	default:
		http.Redirect(w, r, "/pay/"+txn, http.StatusSeeOther)
	}
}
