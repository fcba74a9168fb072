// Package demo creates the demo estate: 3 buildings × 2 entrances × 18
// floors × 4 units, about a thousand residents, and one staff login per
// role. Seeding happens once; a later run keeps what is there.
package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
)

// Login is a demo staff account.
type Login struct {
	Role     auth.Role
	Username string
	Password string
}

// Logins are the demo's staff accounts. Their passwords are printed by
// the demo command: never use them on a real estate.
var Logins = []Login{
	{auth.Admin, "admin", "admin-demo-1"},
	{auth.Supervisor, "supervisor", "supervisor-demo-1"},
	{auth.Clerk, "clerk", "clerk-demo-1"},
	{auth.Cashier, "cashier", "cashier-demo-1"},
	{auth.Guard, "guard", "guard-demo-1"},
}

var displayNames = map[auth.Role]string{
	auth.Admin: "系统管理员", auth.Supervisor: "周主管", auth.Clerk: "王前台", auth.Cashier: "李收银", auth.Guard: "赵保安",
}

// Seed creates the demo staff and estate if they are not there yet.
func Seed(ctx context.Context, as *auth.Service, es *estate.Service) ([]Login, error) {
	for _, l := range Logins {
		_, err := as.CreateStaff(ctx, auth.NewStaff{Username: l.Username, DisplayName: displayNames[l.Role], Role: l.Role, Password: l.Password})
		if err != nil && !errors.Is(err, fault.ErrConflict) {
			return nil, fmt.Errorf("demo: staff %s: %w", l.Username, err)
		}
	}
	empty, err := es.IsEmpty(ctx)
	if err != nil || !empty {
		return Logins, err
	}
	if _, err := es.ImportRoll(ctx, Roll()); err != nil {
		return nil, fmt.Errorf("demo: estate: %w", err)
	}
	return Logins, nil
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	given    = []string{"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞",
		"平", "刚", "桂英", "建华", "文", "华", "建国", "红", "玉兰", "志强", "春梅", "海燕", "子涵", "浩然", "雨萱", "一诺", "梓轩", "欣怡", "宇航", "思远"}
)

// Roll returns the demo estate as a resident roll: every unit, most with
// an owner, many with family, some let to tenants, a few vacant.
func Roll() []estate.RollRow {
	r := rand.New(rand.NewPCG(2026, 11))
	name := func() string { return string(surnames[r.IntN(len(surnames))]) + given[r.IntN(len(given))] }
	phone := func() string { return fmt.Sprintf("1%d%09d", 3+r.IntN(7), r.IntN(1_000_000_000)) }
	last4 := func() string {
		s := fmt.Sprintf("%04d", r.IntN(10000))
		if r.IntN(11) == 0 {
			s = s[:3] + "X"
		}
		return s
	}
	areas := []string{"89.52", "105.3", "126.8", "143.65"}
	var rows []estate.RollRow
	line := 1
	add := func(row estate.RollRow) {
		line++
		row.Line = line
		rows = append(rows, row)
	}
	for b := 1; b <= 3; b++ {
		for e := 1; e <= 2; e++ {
			for f := 1; f <= 18; f++ {
				for u := 1; u <= 4; u++ {
					unit := estate.RollRow{
						Unit:         fmt.Sprintf("%d-%d-%d%02d", b, e, f, u),
						Area:         areas[u-1],
						HandoverDate: fmt.Sprintf("2021-%02d-%02d", 3+b, 10+e),
					}
					if r.IntN(25) == 0 { // vacant
						add(unit)
						continue
					}
					movedIn := fmt.Sprintf("20%02d-%02d-%02d", 21+r.IntN(4), 1+r.IntN(12), 1+r.IntN(28))
					owner := unit
					owner.Name, owner.Phone, owner.IDType, owner.IDLast4, owner.Role, owner.MovedInOn =
						name(), phone(), "resident_id", last4(), "owner", movedIn
					add(owner)
					if r.IntN(5) == 0 { // a couple on the deed
						co := unit
						co.Name, co.Phone, co.IDType, co.IDLast4, co.Role, co.MovedInOn = name(), phone(), "resident_id", last4(), "owner", movedIn
						add(co)
					}
					if r.IntN(6) == 0 { // let to a tenant
						t := unit
						start := fmt.Sprintf("20%02d-%02d-01", 24+r.IntN(2), 1+r.IntN(12))
						end := fmt.Sprintf("20%s", fmt.Sprint(27+r.IntN(2))+start[4:])
						t.Name, t.Phone, t.IDType, t.IDLast4, t.Role, t.MovedInOn = name(), phone(), "resident_id", last4(), "tenant", start
						t.LeaseStart, t.LeaseEnd, t.ConsentMethod, t.Note = start, end, "written", "业主书面同意书已存档"
						if r.IntN(8) == 0 {
							t.IDType = "passport"
							t.IDLast4 = fmt.Sprintf("%04d", r.IntN(10000))
						}
						add(t)
						continue
					}
					for k := r.IntN(4); k > 0; k-- {
						fam := unit
						fam.Name, fam.Phone, fam.IDType, fam.IDLast4, fam.Role, fam.MovedInOn = name(), phone(), "resident_id", last4(), "family", movedIn
						add(fam)
					}
				}
			}
		}
	}
	return rows
}
