package server_test

import (
	"fmt"
	"strings"
	"testing"

	"onecard/auth"
	"onecard/cards"
	"onecard/estate"
	"onecard/store"
	"onecard/store/storetest"
	"onecard/web"
)

// cardCounts is a fingerprint of the card register and what it touches,
// to prove refused requests recorded nothing.
func cardCounts(t *testing.T, db *store.DB) string {
	t.Helper()
	var out []string
	for _, table := range []string{"cards", "card_rights", "card_events", "bills", "audit_log"} {
		var n int
		if err := db.Get(t.Context(), &n, "SELECT COUNT(*) FROM "+table); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(out, " ")
}

// cardSite is a running onecard with two units handed over, an owner
// living in each (their person ids returned), and the card fee item.
func cardSite(t *testing.T, db *store.DB) (e *env, owner, neighbour int64) {
	t.Helper()
	e = start(t, db)
	clerk := e.as(auth.Clerk)
	var ids []int64
	for i, code := range []string{"1-1-101", "1-1-102"} {
		if res, body := clerk.json("POST", "/api/v1/units", `{"code":"`+code+`","area_m2":90,"handover_date":"2020-01-01"}`); res.StatusCode != 201 {
			t.Fatalf("unit %s: %d %s", code, res.StatusCode, body)
		}
		res, body := clerk.json("POST", "/api/v1/units/"+code+"/occupancies", fmt.Sprintf(
			`{"role":"owner","moved_in_on":"2020-02-01","person":{"name":"业主%d","phone":"1380013800%d","id_type":"resident_id","id_last4":"123%d"}}`, i, i, i))
		if res.StatusCode != 201 {
			t.Fatalf("move in %s: %d %s", code, res.StatusCode, body)
		}
		ids = append(ids, decode[estate.Occupancy](t, body).PersonID)
	}
	res, body := e.as(auth.Supervisor).json("PUT", "/api/v1/fees/card_fee", `{"name":"门禁卡工本费","kind":"one_off","price_fen":2000}`)
	if res.StatusCode != 201 {
		t.Fatalf("card fee item: %d %s", res.StatusCode, body)
	}
	return e, ids[0], ids[1]
}

// activate stands in for the encoder (the harness has none): the card is
// marked issued with a UID, as Issue would leave it.
func activate(t *testing.T, db *store.DB, id int64, uid string) {
	t.Helper()
	if _, err := db.Exec(t.Context(), "UPDATE cards SET state = 'active', uid = ? WHERE id = ?", uid, id); err != nil {
		t.Fatal(err)
	}
}

func TestCardsAPIApplyAndSteps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, owner, neighbour := cardSite(t, db)
		clerk, cashier := e.as(auth.Clerk), e.as(auth.Cashier)

		// The owner of a handed-over unit applies: gate, building door and lift.
		res, body := clerk.json("POST", "/api/v1/units/1-1-101/cards", fmt.Sprintf(`{"person_id":%d,"note":"本人办理"}`, owner))
		c := decode[cards.Record](t, body)
		if res.StatusCode != 201 || c.State != "applied" || c.Type != "owner" || len(c.Rights) != 3 || c.Unit == nil || *c.Unit != "1-1-101" ||
			c.PersonID != owner || c.FeeBillID != nil || c.UID != nil {
			t.Fatalf("apply: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", "/api/v1/units/1-1-101/cards", "", "")
		if l := decode[page[cards.Record]](t, body); res.StatusCode != 200 || l.Total != 1 || len(l.Items) != 1 || l.Items[0].ID != c.ID {
			t.Fatalf("unit cards: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", fmt.Sprintf("/api/v1/cards/%d", c.ID), "", "")
		if got := decode[cards.Record](t, body); res.StatusCode != 200 || got.Number != c.Number || len(got.Rights) != 3 || got.Rights[0].Zone != "b1" {
			t.Fatalf("card: %d %s", res.StatusCode, body)
		}

		// Refused requests record nothing and say why.
		guard := e.tokenClient(auth.Guard)
		before := cardCounts(t, db)
		lost := fmt.Sprintf("/api/v1/cards/%d/lost", c.ID)
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code                     string
		}{
			{"someone not living there", "POST", "/api/v1/units/1-1-101/cards", fmt.Sprintf(`{"person_id":%d}`, neighbour), 422, "not_resident"},
			{"no person", "POST", "/api/v1/units/1-1-101/cards", `{"carpark":true}`, 422, "id_invalid"},
			{"the unit in the body", "POST", "/api/v1/units/1-1-101/cards", fmt.Sprintf(`{"unit":"1-1-102","person_id":%d}`, owner), 422, "unknown_field"},
			{"unknown unit", "POST", "/api/v1/units/9-9-999/cards", fmt.Sprintf(`{"person_id":%d}`, owner), 404, "unit_not_found"},
			{"an applied card reported lost", "POST", lost, `{"note":"丢失"}`, 409, "card_state"},
			{"issue without an encoder", "POST", fmt.Sprintf("/api/v1/cards/%d/issue", c.ID), "", 422, "encoder_not_configured"},
			{"replace an applied card", "POST", fmt.Sprintf("/api/v1/cards/%d/replace", c.ID), `{}`, 409, "card_state"},
			{"return an applied card", "POST", fmt.Sprintf("/api/v1/cards/%d/return", c.ID), `{}`, 409, "card_state"},
			{"unknown card", "POST", "/api/v1/cards/999999/lost", `{}`, 404, "card_not_found"},
			{"bad id", "GET", "/api/v1/cards/abc", "", 422, "id_invalid"},
			{"events of an unknown card", "GET", "/api/v1/cards/999999/events", "", 404, "card_not_found"},
			{"cards of an unknown unit", "GET", "/api/v1/units/9-9-999/cards", "", 404, "unit_not_found"},
		} {
			res, body := clerk.json(tc.method, tc.path, tc.body)
			if res.StatusCode != tc.status || errCode(body) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, body, tc.status, tc.code)
			}
		}
		res, body = clerk.json("POST", lost, `{}`)
		if d := decode[web.ErrorBody](t, body).Error; d.Args["state"] != "applied" || !strings.Contains(d.Message, "applied") {
			t.Errorf("card_state error: %s", body)
		}
		// A guard's API token may not block cards.
		res, body = guard.json("POST", lost, `{}`)
		if res.StatusCode != 403 {
			t.Errorf("guard token reports lost: %d %s", res.StatusCode, body)
		}
		if after := cardCounts(t, db); after != before {
			t.Fatalf("refused requests changed the register:\n%s\n%s", before, after)
		}

		// Lost and unblocked (the card stands issued: no encoder here); the
		// body of a step is optional.
		activate(t, db, c.ID, "04A23B1C")
		res, body = clerk.json("POST", lost, `{"note":"丢失于小区外"}`)
		if got := decode[cards.Record](t, body); res.StatusCode != 200 || got.State != "blocked" {
			t.Fatalf("lost: %d %s", res.StatusCode, body)
		}
		res, body = clerk.do("POST", fmt.Sprintf("/api/v1/cards/%d/unblock", c.ID), "", "")
		if got := decode[cards.Record](t, body); res.StatusCode != 200 || got.State != "active" {
			t.Fatalf("unblock: %d %s", res.StatusCode, body)
		}

		// Replaced after a loss: the fee is charged unless said otherwise.
		res, body = clerk.json("POST", fmt.Sprintf("/api/v1/cards/%d/replace", c.ID), `{"note":"补卡"}`)
		nc := decode[cards.Record](t, body)
		if res.StatusCode != 201 || nc.State != "applied" || nc.Replaces == nil || *nc.Replaces != c.ID || nc.FeeBillID == nil || len(nc.Rights) != 3 {
			t.Fatalf("replace: %d %s", res.StatusCode, body)
		}
		// Damaged by wear: swapped without the fee unless said otherwise.
		activate(t, db, nc.ID, "04112233")
		res, body = clerk.json("POST", fmt.Sprintf("/api/v1/cards/%d/replace", nc.ID), `{"damaged":true}`)
		swap := decode[cards.Record](t, body)
		if res.StatusCode != 201 || swap.FeeBillID != nil || swap.Replaces == nil || *swap.Replaces != nc.ID {
			t.Fatalf("damaged: %d %s", res.StatusCode, body)
		}
		if got, _ := e.cards.Card(t.Context(), nc.ID); got.State != "damaged" {
			t.Fatalf("damaged card: %+v", got)
		}
		res, body = clerk.json("POST", fmt.Sprintf("/api/v1/cards/%d/cancel", swap.ID), `{"note":"业主搬离"}`)
		if got := decode[cards.Record](t, body); res.StatusCode != 200 || got.State != "cancelled" {
			t.Fatalf("cancel: %d %s", res.StatusCode, body)
		}

		// The register of the first card, oldest first.
		res, body = cashier.do("GET", fmt.Sprintf("/api/v1/cards/%d/events", c.ID), "", "")
		ev := decode[page[cards.Event]](t, body)
		var actions []string
		for _, x := range ev.Items {
			actions = append(actions, x.Action)
		}
		if res.StatusCode != 200 || ev.Total != 4 || strings.Join(actions, " ") != "apply lost unblock replace" ||
			ev.Items[0].Note != "本人办理" || ev.Items[0].Staff != "clerk" {
			t.Fatalf("events: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", "/api/v1/units/1-1-101/cards", "", "")
		if l := decode[page[cards.Record]](t, body); res.StatusCode != 200 || l.Total != 3 {
			t.Fatalf("unit cards at the end: %d %s", res.StatusCode, body)
		}
	})
}

func TestCardsAPIPolicy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := start(t, db)
		sup := e.as(auth.Supervisor)
		res, body := e.as(auth.Cashier).do("GET", "/api/v1/card-policy", "", "")
		if p := decode[cards.Policy](t, body); res.StatusCode != 200 ||
			p != (cards.Policy{FreePerHousehold: 3, MaxPerHousehold: 10, FeeFen: 2000, DepositFen: 5000, OwnerMonths: 24}) {
			t.Fatalf("default policy: %d %s", res.StatusCode, body)
		}
		if res, body := e.as(auth.Clerk).json("PUT", "/api/v1/card-policy", `{"fee_fen":0}`); res.StatusCode != 403 {
			t.Fatalf("clerk changes the policy: %d %s", res.StatusCode, body)
		}

		want := cards.Policy{FreePerHousehold: 4, MaxPerHousehold: 6, FeeFen: 1500, DepositOn: true, DepositFen: 3000, OwnerMonths: 36}
		res, body = sup.json("PUT", "/api/v1/card-policy",
			`{"free_per_household":4,"max_per_household":6,"fee_fen":1500,"deposit_on":true,"deposit_fen":3000,"owner_months":36}`)
		if p := decode[cards.Policy](t, body); res.StatusCode != 200 || p != want {
			t.Fatalf("save policy: %d %s", res.StatusCode, body)
		}
		// Fields left out keep their values.
		want.FeeFen = 2500
		res, body = sup.json("PUT", "/api/v1/card-policy", `{"fee_fen":2500}`)
		if p := decode[cards.Policy](t, body); res.StatusCode != 200 || p != want {
			t.Fatalf("change the fee: %d %s", res.StatusCode, body)
		}

		before := cardCounts(t, db)
		for _, tc := range []struct {
			name, body, code, field string
		}{
			{"more free cards than allowed", `{"free_per_household":7}`, "policy_invalid", "max_per_household"},
			{"negative free cards", `{"free_per_household":-1}`, "policy_invalid", "free_per_household"},
			{"no cards at all", `{"max_per_household":0}`, "policy_invalid", "max_per_household"},
			{"negative fee", `{"fee_fen":-1}`, "policy_invalid", "fee_fen"},
			{"deposit too large", `{"deposit_fen":1000001}`, "policy_invalid", "deposit_fen"},
			{"validity too long", `{"owner_months":121}`, "policy_invalid", "owner_months"},
			{"wrong type", `{"fee_fen":"20"}`, "wrong_type", "fee_fen"},
			{"unknown field", `{"fee":20}`, "unknown_field", "fee"},
		} {
			res, body := sup.json("PUT", "/api/v1/card-policy", tc.body)
			if d := decode[web.ErrorBody](t, body).Error; res.StatusCode != 422 || d.Code != tc.code || d.Field != tc.field {
				t.Errorf("%s: %d %s, want 422 %s on %s", tc.name, res.StatusCode, body, tc.code, tc.field)
			}
		}
		if after := cardCounts(t, db); after != before {
			t.Fatalf("refused changes were recorded:\n%s\n%s", before, after)
		}
		res, body = sup.do("GET", "/api/v1/card-policy", "", "")
		if p := decode[cards.Policy](t, body); res.StatusCode != 200 || p != want {
			t.Fatalf("policy after refused changes: %d %s", res.StatusCode, body)
		}
	})
}

func TestCardsAPIAccessGroups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, owner, _ := cardSite(t, db)
		sup, clerk := e.as(auth.Supervisor), e.as(auth.Clerk)
		group := `{"name":"会所","rights":[{"zone":"gym","sched":"always"},{"zone":"b2","sched":"workhours"}]}`
		if res, _ := clerk.json("PUT", "/api/v1/access-groups/club", group); res.StatusCode != 403 {
			t.Fatalf("a clerk defines a group: %d", res.StatusCode)
		}
		if res, body := sup.json("PUT", "/api/v1/access-groups/club", group); res.StatusCode != 200 || !strings.Contains(body, `"version":1`) {
			t.Fatalf("define: %d %s", res.StatusCode, body)
		}
		if res, body := sup.json("PUT", "/api/v1/access-groups/club", group); res.StatusCode != 409 || errCode(body) != "stale_version" {
			t.Fatalf("stale: %d %s", res.StatusCode, body)
		}
		if res, body := sup.json("PUT", "/api/v1/access-groups/Club!", group); res.StatusCode != 422 || errCode(body) != "group_code_invalid" {
			t.Fatalf("bad code: %d %s", res.StatusCode, body)
		}
		res, body := clerk.json("POST", "/api/v1/units/1-1-101/cards", fmt.Sprintf(`{"person_id":%d,"groups":["club"]}`, owner))
		if res.StatusCode != 201 || !strings.Contains(body, `"zone":"gym"`) || !strings.Contains(body, `"sched":"workhours"`) {
			t.Fatalf("apply with a group: %d %s", res.StatusCode, body)
		}
		if res, body := clerk.do("GET", "/api/v1/access-groups", "", ""); res.StatusCode != 200 || !strings.Contains(body, `"total":1`) {
			t.Fatalf("list: %d %s", res.StatusCode, body)
		}
	})
}
