// Package migrations embeds onecard's SQL migrations. One schema serves
// SQLite and PostgreSQL; the only dialect macro is {{pk}}, the id column.
// Times are TIMESTAMP in UTC, calendar dates TEXT 'YYYY-MM-DD', money
// INTEGER fen.
package migrations

import "embed"

// FS holds the NNNN_name.sql files.
//
//go:embed *.sql
var FS embed.FS
