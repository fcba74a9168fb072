package reader

import (
	"fmt"
	"maps"
	"slices"
	"time"
	_ "time/tzdata" // a reader carries its own time zone database

	"onecard/fleet/proto"
)

// schedules is the site configuration ready for decisions.
type schedules struct {
	loc      *time.Location
	segs     map[string][]segment
	holidays map[string]bool // "2026-10-01"
}

type segment struct {
	days     [9]bool // 1 Monday … 7 Sunday, 8 holidays
	from, to int     // minutes of the day, [from, to)
}

// compile checks a configuration (its time zone) and prepares it.
func compile(c *proto.Config) (*schedules, error) {
	loc, err := time.LoadLocation(c.TZ)
	if err != nil {
		return nil, fmt.Errorf("reader: config: time zone %q: %w", c.TZ, err)
	}
	s := &schedules{loc: loc, segs: map[string][]segment{}, holidays: map[string]bool{}}
	for _, d := range c.Holidays {
		s.holidays[d] = true
	}
	for name, segs := range c.Schedules {
		for _, sg := range segs {
			var x segment
			for _, d := range sg.Days {
				if d == 'H' {
					x.days[holiday] = true
				} else {
					x.days[d-'0'] = true
				}
			}
			x.from, x.to = minutes(sg.From), minutes(sg.To)
			s.segs[name] = append(s.segs[name], x)
		}
	}
	return s, nil
}

// holiday is the day index of holidays in segment.days.
const holiday = 8

// minutes reads "HH:MM", already validated by proto.
func minutes(hhmm string) int {
	return (int(hhmm[0]-'0')*10+int(hhmm[1]-'0'))*60 + int(hhmm[3]-'0')*10 + int(hhmm[4]-'0')
}

// allows reports whether the schedule named lets a card in at t. "always"
// always does; a name the configuration does not define (or no
// configuration yet) never does.
func (s *schedules) allows(name string, t time.Time) bool {
	if name == "always" {
		return true
	}
	if s == nil {
		return false
	}
	local := t.In(s.loc)
	day := int(local.Weekday())
	if day == 0 {
		day = 7
	}
	if s.holidays[local.Format(time.DateOnly)] {
		day = holiday // a holiday takes the place of its weekday
	}
	m := local.Hour()*60 + local.Minute()
	for _, sg := range s.segs[name] {
		if sg.days[day] && m >= sg.from && m < sg.to {
			return true
		}
	}
	return false
}

func sameConfig(a, b *proto.Config) bool {
	return a.TZ == b.TZ && maps.EqualFunc(a.Schedules, b.Schedules, slices.Equal[[]proto.Segment]) && slices.Equal(a.Holidays, b.Holidays) &&
		slices.Equal(a.PassKeys, b.PassKeys)
}
