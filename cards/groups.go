package cards

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"onecard/auth"
	"onecard/fault"
	"onecard/fleet/proto"
	"onecard/store"
)

// Group is an access group: zones, each on a schedule, granted together.
type Group struct {
	ID      int64   `db:"id" json:"id"`
	Code    string  `db:"code" json:"code"`
	Name    string  `db:"name" json:"name"`
	Version int     `db:"version" json:"version"`
	Rights  []Right `db:"-" json:"rights"`
}

var groupCodeRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Groups lists the site's access groups with their rights.
func (r *Register) Groups(ctx context.Context) ([]Group, error) {
	out := []Group{}
	if err := r.db.Select(ctx, &out, "SELECT id, code, name, version FROM access_groups WHERE site_id = ? ORDER BY code", r.site.ID); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Rights = []Right{}
		if err := r.db.Select(ctx, &out[i].Rights, "SELECT zone, sched FROM access_group_rights WHERE group_id = ? ORDER BY zone", out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseRights reads "gate, b1:workhours, carpark" (a zone alone is
// "always").
func ParseRights(s string) ([]Right, error) {
	var out []Right
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ' ' || r == '\n' }) {
		zone, sched, ok := strings.Cut(f, ":")
		if !ok {
			sched = "always"
		}
		zone, sched = strings.TrimSpace(zone), strings.TrimSpace(sched)
		if !proto.ValidID(zone) || !proto.ValidID(sched) {
			return nil, fault.Invalid("rights", "rights_invalid", "right", f)
		}
		if slices.ContainsFunc(out, func(r Right) bool { return r.Zone == zone }) {
			return nil, fault.Invalid("rights", "rights_invalid", "right", f)
		}
		out = append(out, Right{zone, sched})
	}
	if len(out) == 0 || len(out) > 64 {
		return nil, fault.Invalid("rights", "zones_required")
	}
	return out, nil
}

// SaveGroup creates an access group or changes one (Version must match).
// Cards already issued keep the rights they were given.
func (r *Register) SaveGroup(ctx context.Context, g Group) (Group, error) {
	g.Code, g.Name = strings.TrimSpace(g.Code), strings.TrimSpace(g.Name)
	switch {
	case !groupCodeRE.MatchString(g.Code):
		return Group{}, fault.Invalid("code", "group_code_invalid")
	case g.Name == "" || len([]rune(g.Name)) > 40:
		return Group{}, fault.Invalid("name", "name_required")
	case len(g.Rights) == 0 || len(g.Rights) > 64:
		return Group{}, fault.Invalid("rights", "zones_required")
	}
	for _, rt := range g.Rights {
		if !proto.ValidID(rt.Zone) || !proto.ValidID(rt.Sched) {
			return Group{}, fault.Invalid("rights", "rights_invalid", "right", rt.Zone+":"+rt.Sched)
		}
	}
	var out Group
	err := r.db.Tx(ctx, func(tx *store.Tx) error {
		var old Group
		err := tx.Get(ctx, &old, "SELECT id, code, name, version FROM access_groups WHERE site_id = ? AND code = ?", r.site.ID, g.Code)
		now := r.now()
		switch {
		case store.IsNoRows(err):
			id, err := tx.Insert(ctx, "INSERT INTO access_groups (site_id, code, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
				r.site.ID, g.Code, g.Name, now, now)
			if err != nil {
				return err
			}
			out = Group{ID: id, Code: g.Code, Name: g.Name, Version: 1, Rights: g.Rights}
		case err != nil:
			return err
		default:
			if g.Version != old.Version {
				return fault.Conflict("version", "stale_version")
			}
			if _, err := tx.Exec(ctx, "UPDATE access_groups SET name = ?, version = version + 1, updated_at = ? WHERE id = ?", g.Name, now, old.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM access_group_rights WHERE group_id = ?", old.ID); err != nil {
				return err
			}
			out = Group{ID: old.ID, Code: g.Code, Name: g.Name, Version: old.Version + 1, Rights: g.Rights}
		}
		for _, rt := range out.Rights {
			if _, err := tx.Exec(ctx, "INSERT INTO access_group_rights (group_id, zone, sched) VALUES (?, ?, ?)", out.ID, rt.Zone, rt.Sched); err != nil {
				return err
			}
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "access_group.save", Entity: "access_group", EntityID: out.ID, After: out})
	})
	return out, err
}

// withGroups adds the rights of the groups named to rights: a zone already
// there keeps "always" if either gives it.
func (r *Register) withGroups(ctx context.Context, rights []Right, codes []string) ([]Right, error) {
	if len(codes) == 0 {
		return rights, nil
	}
	groups, err := r.Groups(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(rights)
	for _, code := range codes {
		i := slices.IndexFunc(groups, func(g Group) bool { return g.Code == code })
		if i < 0 {
			return nil, fault.Invalid("groups", "group_not_found", "group", code)
		}
		for _, rt := range groups[i].Rights {
			j := slices.IndexFunc(out, func(x Right) bool { return x.Zone == rt.Zone })
			switch {
			case j < 0:
				out = append(out, rt)
			case rt.Sched == "always":
				out[j].Sched = "always"
			}
		}
	}
	return out, nil
}
