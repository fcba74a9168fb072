// Package estate owns the estate directory: the site, its buildings,
// entrances and units, the people who live there and their occupancies
// (owner, family member confirmed by an owner, tenant with a lease and the
// owner's consent), from move-in to move-out. It also reads and writes the
// resident roll (CSV or XLSX) that estates keep.
package estate
