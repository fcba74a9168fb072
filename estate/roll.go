package estate

// The resident roll (业主花名册): the spreadsheet estates keep of every unit
// and everyone living in it, read from and written to CSV or XLSX.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/unicode/norm"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Limits on a roll file.
const (
	// MaxRollRows is the most data rows (the header and blank rows aside)
	// one roll may hold.
	MaxRollRows = 20_000
	// MaxRollBytes is the largest roll file read, in bytes.
	MaxRollBytes = 10 << 20

	// xlsxUnzipLimit caps the uncompressed size of an XLSX roll, so that a
	// small zip cannot expand without bound.
	xlsxUnzipLimit = 128 << 20
)

// RollRow is one row of a resident roll as read from a file: each cell
// trimmed, but otherwise as written (labels such as 业主 are mapped by
// ImportRoll, not here). Line is the row number a spreadsheet shows for it;
// the header is row 1.
type RollRow struct {
	Line          int    `json:"line"`
	Unit          string `json:"unit"`
	Area          string `json:"area_m2"`
	HandoverDate  string `json:"handover_date"`
	Name          string `json:"name"`
	Phone         string `json:"phone"`
	IDType        string `json:"id_type"`
	IDLast4       string `json:"id_last4"`
	Role          string `json:"role"`
	MovedInOn     string `json:"moved_in_on"`
	LeaseStart    string `json:"lease_start"`
	LeaseEnd      string `json:"lease_end"`
	ConsentMethod string `json:"consent_method"`
	Note          string `json:"note"`
}

// RowError is one problem found in a roll: the row (Line, 0 for the file as
// a whole), the column (Field, by its English header name) and a stable
// snake_case Code, with Args to fill a translated message.
type RowError struct {
	Line  int            `json:"line"`
	Field string         `json:"field,omitempty"`
	Code  string         `json:"code"`
	Args  map[string]any `json:"args,omitempty"`
}

// ImportError lists every problem found in a roll; when ImportRoll returns
// one, nothing was imported. It unwraps to fault.ErrInvalid.
type ImportError struct {
	Rows []RowError `json:"rows"`
}

// Error summarises the first few problems.
func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "estate: roll rejected, %d problem(s)", len(e.Rows))
	for i, r := range e.Rows {
		if i == 5 {
			b.WriteString("; …")
			break
		}
		fmt.Fprintf(&b, "; line %d", r.Line)
		if r.Field != "" {
			fmt.Fprintf(&b, " %s", r.Field)
		}
		fmt.Fprintf(&b, ": %s", r.Code)
	}
	return b.String()
}

// Unwrap makes an ImportError a validation error (HTTP 422).
func (e *ImportError) Unwrap() error { return fault.ErrInvalid }

func importError(line int, field, code string, args ...any) *ImportError {
	return &ImportError{Rows: []RowError{{Line: line, Field: field, Code: code, Args: argMap(args)}}}
}

func argMap(args []any) map[string]any {
	if len(args) == 0 {
		return nil
	}
	m := make(map[string]any, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		m[args[i].(string)] = args[i+1]
	}
	return m
}

// ImportResult counts what an import did. Unchanged counts rows that were
// already true of the directory: a resident already living in the unit in
// that role, or a unit-only row for a unit that already existed.
type ImportResult struct {
	UnitsCreated     int `json:"units_created"`
	ResidentsCreated int `json:"residents_created"`
	Unchanged        int `json:"unchanged"`
}

// rollColumn is one column of the roll format.
type rollColumn struct {
	key      string // English header, also the RowError field
	zh       string // Chinese header, written on export
	required bool
	cell     func(*RollRow) *string
}

// rollColumns are the columns in the order export writes them. A file must
// have the required ones (the unit and who lives there); the others may be
// left out, e.g. lease columns in a roll without tenants.
var rollColumns = []rollColumn{
	{"unit", "房号", true, func(r *RollRow) *string { return &r.Unit }},
	{"area_m2", "建筑面积", false, func(r *RollRow) *string { return &r.Area }},
	{"handover_date", "交房日期", false, func(r *RollRow) *string { return &r.HandoverDate }},
	{"name", "姓名", true, func(r *RollRow) *string { return &r.Name }},
	{"phone", "电话", true, func(r *RollRow) *string { return &r.Phone }},
	{"id_type", "证件类型", true, func(r *RollRow) *string { return &r.IDType }},
	{"id_last4", "证件后四位", true, func(r *RollRow) *string { return &r.IDLast4 }},
	{"role", "身份", true, func(r *RollRow) *string { return &r.Role }},
	{"moved_in_on", "入住日期", false, func(r *RollRow) *string { return &r.MovedInOn }},
	{"lease_start", "租期开始", false, func(r *RollRow) *string { return &r.LeaseStart }},
	{"lease_end", "租期结束", false, func(r *RollRow) *string { return &r.LeaseEnd }},
	{"consent_method", "业主同意方式", false, func(r *RollRow) *string { return &r.ConsentMethod }},
	{"note", "备注", false, func(r *RollRow) *string { return &r.Note }},
}

// rollHeaders maps a normalised header text, English or Chinese, to its
// index in rollColumns.
var rollHeaders = func() map[string]int {
	m := map[string]int{}
	for i, c := range rollColumns {
		m[c.key] = i
		m[c.zh] = i
	}
	return m
}()

func headerKey(s string) string { return strings.ToLower(strings.TrimSpace(norm.NFKC.String(s))) }

// Labels the roll uses for codes, both ways: export writes the Chinese
// label, import accepts either (and a few common variants).
var (
	idTypeLabels = map[string]string{
		"resident_id":       "居民身份证",
		"passport":          "护照",
		"hk_macau_permit":   "港澳居民来往内地通行证",
		"taiwan_permit":     "台湾居民来往大陆通行证",
		"foreign_residence": "外国人永久居留身份证",
		"other":             "其他",
	}
	roleLabels    = map[string]string{Owner: "业主", Family: "家属", Tenant: "租户"}
	consentLabels = map[string]string{"written": "书面", "in_person": "当面", "phone": "电话"}

	idTypeCodes  = reverse(idTypeLabels, map[string]string{"身份证": "resident_id", "其它": "other"})
	roleCodes    = reverse(roleLabels, nil)
	consentCodes = reverse(consentLabels, nil)
)

func reverse(labels, extra map[string]string) map[string]string {
	m := map[string]string{}
	for code, label := range labels {
		m[code] = code
		m[label] = code
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// lookupCode maps a cell to its code; an unknown value comes back as
// written, for the validator to reject.
func lookupCode(codes map[string]string, s string) string {
	s = strings.TrimSpace(s)
	if c, ok := codes[headerKey(s)]; ok {
		return c
	}
	return s
}

// ReadRoll reads a roll file, format "csv" or "xlsx" (the first sheet). A
// CSV may be UTF-8, with or without a byte-order mark, or GB18030 (as Excel
// saves CSV on Chinese Windows). The first non-blank row is the header, in
// Chinese or English, columns in any order (up to three one-cell title rows
// may stand above it); blank rows are skipped. Every
// structural problem (unreadable file, unknown or missing columns, cells
// outside the columns, too big) comes back as an *ImportError; the rows'
// contents are checked by ImportRoll.
func ReadRoll(r io.Reader, format string) ([]RollRow, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRollBytes+1))
	if err != nil {
		return nil, fmt.Errorf("estate: read roll: %w", err)
	}
	if len(data) > MaxRollBytes {
		return nil, importError(0, "", "file_too_large", "max_bytes", MaxRollBytes)
	}
	switch rollFormat(format) {
	case "csv":
		return readRollCSV(data)
	case "xlsx":
		return readRollXLSX(data)
	}
	return nil, importError(0, "format", "format_unsupported", "format", format)
}

func rollFormat(f string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(f), "."))
}

// rollBuilder turns file rows, in order, into RollRows.
type rollBuilder struct {
	header int   // the header's line, 0 until seen
	titles int   // title rows skipped before the header
	cols   []int // file column → index in rollColumns, -1 for a blank header
	rows   []RollRow
	errs   []RowError
}

// maxTitleRows is how many title rows ("XX花园业主花名册", one cell each)
// may stand above the header.
const maxTitleRows = 3

// isTitle reports whether a row before the header is a title: one cell,
// and not a column name.
func isTitle(cells []string) bool {
	n := 0
	for _, c := range cells {
		if k := headerKey(c); k != "" {
			if _, ok := rollHeaders[k]; ok {
				return false
			}
			n++
		}
	}
	return n == 1
}

func blankRow(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// cleanCell trims a cell and makes its line breaks "\n".
func cleanCell(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

func columnName(i int) string {
	name, err := excelize.ColumnNumberToName(i + 1)
	if err != nil {
		return strconv.Itoa(i + 1)
	}
	return name
}

// add takes the next file row. It returns an error when reading must stop.
func (b *rollBuilder) add(line int, cells []string) *ImportError {
	if blankRow(cells) {
		return nil
	}
	if b.header == 0 {
		if b.titles < maxTitleRows && isTitle(cells) {
			b.titles++
			return nil
		}
		return b.setHeader(line, cells)
	}
	if len(b.rows) == MaxRollRows {
		return importError(line, "", "too_many_rows", "max", MaxRollRows)
	}
	row := RollRow{Line: line}
	for i, c := range cells {
		c = cleanCell(c)
		if c == "" {
			continue
		}
		if i >= len(b.cols) || b.cols[i] < 0 {
			b.errs = append(b.errs, RowError{Line: line, Code: "cell_outside_columns", Args: map[string]any{"column": columnName(i)}})
			continue
		}
		*rollColumns[b.cols[i]].cell(&row) = c
	}
	b.rows = append(b.rows, row)
	return nil
}

func (b *rollBuilder) setHeader(line int, cells []string) *ImportError {
	b.header = line
	b.cols = make([]int, len(cells))
	seen := make([]bool, len(rollColumns))
	var unknown []string
	known := 0
	errs := &ImportError{}
	for i, c := range cells {
		b.cols[i] = -1
		k := headerKey(c)
		if k == "" {
			continue
		}
		idx, ok := rollHeaders[k]
		if !ok {
			unknown = append(unknown, strings.TrimSpace(c))
			continue
		}
		known++
		if seen[idx] {
			errs.Rows = append(errs.Rows, RowError{Line: line, Field: rollColumns[idx].key, Code: "duplicate_column",
				Args: map[string]any{"column": columnName(i), "header": strings.TrimSpace(c)}})
			continue
		}
		seen[idx] = true
		b.cols[i] = idx
	}
	if known == 0 {
		// Most likely the file starts with data, or is not a roll at all.
		return importError(line, "", "header_missing")
	}
	if len(unknown) > 0 {
		errs.Rows = append(errs.Rows, RowError{Line: line, Code: "unknown_columns", Args: map[string]any{"columns": unknown}})
	}
	var missing []string
	for i, c := range rollColumns {
		if c.required && !seen[i] {
			missing = append(missing, c.zh+" ("+c.key+")")
		}
	}
	if len(missing) > 0 {
		errs.Rows = append(errs.Rows, RowError{Line: line, Code: "missing_columns", Args: map[string]any{"columns": missing}})
	}
	if len(errs.Rows) > 0 {
		return errs
	}
	return nil
}

// columnKey is the roll column of file column i, "" if none.
func (b *rollBuilder) columnKey(i int) string {
	if i < len(b.cols) && b.cols[i] >= 0 {
		return rollColumns[b.cols[i]].key
	}
	return ""
}

func (b *rollBuilder) finish() ([]RollRow, error) {
	if b.header == 0 {
		return nil, importError(0, "", "header_missing")
	}
	if len(b.errs) > 0 {
		return nil, &ImportError{Rows: b.errs}
	}
	if b.rows == nil {
		b.rows = []RollRow{}
	}
	return b.rows, nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decodeCSV returns the file as UTF-8 without a byte-order mark.
func decodeCSV(data []byte) ([]byte, *ImportError) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		// Excel's "Unicode text" is UTF-16 and tab-separated.
		return nil, importError(0, "", "encoding_unsupported", "encoding", "UTF-16")
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if utf8.Valid(data) {
		return data, nil
	}
	text, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
	if err != nil || bytes.ContainsRune(text, utf8.RuneError) {
		return nil, importError(0, "", "encoding_invalid")
	}
	return bytes.TrimPrefix(text, utf8BOM), nil
}

func readRollCSV(data []byte) ([]RollRow, error) {
	text, ierr := decodeCSV(data)
	if ierr != nil {
		return nil, ierr
	}
	cr := csv.NewReader(bytes.NewReader(text))
	cr.FieldsPerRecord = -1
	var b rollBuilder
	// A quoted cell may span lines; a spreadsheet shows it as one row, so
	// the line breaks inside earlier records are taken off the file line.
	inside := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, importError(max(pe.StartLine-inside, 1), "", "csv_invalid", "reason", pe.Err.Error())
			}
			return nil, importError(0, "", "csv_invalid", "reason", err.Error())
		}
		start, _ := cr.FieldPos(0)
		line := start - inside
		for i, f := range rec {
			inside += strings.Count(f, "\n")
			rec[i] = unguardCell(cleanCell(f))
		}
		if ierr := b.add(line, rec); ierr != nil {
			return nil, ierr
		}
	}
	return b.finish()
}

// A cell starting with one of these is a formula to a spreadsheet; CSV
// export writes it behind an apostrophe (as OWASP advises against CSV
// injection) and import takes the apostrophe off again.
const formulaStarts = "=+-@"

func guardCell(s string) string {
	if strings.TrimLeft(s, "'") != "" && strings.ContainsRune(formulaStarts, []rune(strings.TrimLeft(s, "'"))[0]) {
		return "'" + s
	}
	return s
}

func unguardCell(s string) string {
	if strings.HasPrefix(s, "'") && guardCell(s[1:]) == s {
		return s[1:]
	}
	return s
}

var numericRE = regexp.MustCompile(`^-?\d+(\.\d+)?([eE][-+]?\d+)?$`)

// readRollXLSX reads the first sheet. Cells are read raw, so that a number
// format cannot round an area or turn a phone number into 1.38E+10; dates
// stored as numbers (serials) become YYYY-MM-DD, while text that merely
// looks like a serial is left for ParseDate to reject; other numeric cells
// (an ID's last four digits formatted "0000") read as Excel displays them.
func readRollXLSX(data []byte) (rows []RollRow, err error) {
	defer func() {
		// A malformed workbook must not take the server down.
		if p := recover(); p != nil {
			rows, err = nil, importError(0, "", "file_unreadable", "reason", fmt.Sprint(p))
		}
	}()
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: xlsxUnzipLimit, UnzipXMLSizeLimit: 16 << 20})
	if err != nil {
		return nil, importError(0, "", "file_unreadable", "reason", err.Error())
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, importError(0, "", "file_unreadable", "reason", "no sheet")
	}
	sheet := sheets[0]
	date1904 := false
	if p, err := f.GetWorkbookProps(); err == nil && p.Date1904 != nil {
		date1904 = *p.Date1904
	}
	it, err := f.Rows(sheet)
	if err != nil {
		return nil, importError(0, "", "file_unreadable", "reason", err.Error())
	}
	defer it.Close()
	// Cells that need the cell's type or number format, which the row
	// iterator does not give, are looked at once the rows are read.
	type later struct {
		row, col, line, field int
		date                  bool
		raw                   string
	}
	var fix []later
	var b rollBuilder
	for line := 1; it.Next(); line++ {
		cells, err := it.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, importError(line, "", "file_unreadable", "reason", err.Error())
		}
		if b.header != 0 {
			for i, c := range cells {
				c = strings.TrimSpace(c)
				key := b.columnKey(i)
				if isDateColumn(key) && isoDateTimeRE.MatchString(c) {
					cells[i] = c[:10] // a cell of type "d"
				}
				if key == "" || !numericRE.MatchString(c) {
					continue
				}
				switch {
				case isDateColumn(key):
					fix = append(fix, later{row: len(b.rows), col: i, line: line, field: b.cols[i], date: true, raw: c})
				case key == "area_m2":
					cells[i] = excelDecimal(c)
				case key == "phone":
					if v, err := strconv.ParseFloat(c, 64); err == nil && v == math.Trunc(v) && v < 1e16 {
						cells[i] = strconv.FormatFloat(v, 'f', -1, 64)
					}
				default:
					fix = append(fix, later{row: len(b.rows), col: i, line: line, field: b.cols[i]})
				}
			}
		}
		if ierr := b.add(line, cells); ierr != nil {
			return nil, ierr
		}
	}
	if err := it.Error(); err != nil {
		return nil, importError(0, "", "file_unreadable", "reason", err.Error())
	}
	for _, x := range fix {
		ref, err := excelize.CoordinatesToCellName(x.col+1, x.line)
		if err != nil {
			continue
		}
		var v string
		if x.date {
			// A number is a date serial; text that looks like one is not.
			v = x.raw
			if t, err := f.GetCellType(sheet, ref); err == nil && (t == excelize.CellTypeUnset || t == excelize.CellTypeNumber) {
				v = excelDate(x.raw, date1904)
			}
		} else if v, err = f.GetCellValue(sheet, ref); err != nil {
			continue
		}
		*rollColumns[x.field].cell(&b.rows[x.row]) = cleanCell(v)
	}
	return b.finish()
}

var isoDateTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T`)

func isDateColumn(key string) bool {
	switch key {
	case "handover_date", "moved_in_on", "lease_start", "lease_end":
		return true
	}
	return false
}

// excelDate turns a date serial into YYYY-MM-DD; anything else is left for
// ParseDate to judge.
func excelDate(s string, date1904 bool) string {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 1 || v > 120000 {
		return s
	}
	t, err := excelize.ExcelDateToTime(v, date1904)
	if err != nil {
		return s
	}
	return t.Format("2006-01-02")
}

// excelDecimal undoes binary floating point: 89.549999999999997 as Excel
// may store 89.55 reads as 89.55. A value with more than two real decimals
// is left for ParseArea to reject.
func excelDecimal(s string) string {
	_, frac, _ := strings.Cut(s, ".")
	if len(frac) <= 2 && !strings.ContainsAny(s, "eE") {
		return s
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	r := math.Round(v*100) / 100
	if math.Abs(v-r) > 1e-6 {
		return s
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// ImportRoll imports a roll: units, and the people living in them. Every
// row is checked first, against the file and the directory, and every
// problem is reported (an *ImportError listing line, column and code);
// then, only if there is none, everything is applied in one transaction.
// A unit already in the directory is never changed (an area or handover
// date that differs is an error); a resident already living in the unit
// in the same role is left as is; people already in the directory (same
// name and phone) are reused. Owners are registered before family members,
// whom an owner of the unit confirms, and tenants.
func (s *Service) ImportRoll(ctx context.Context, rows []RollRow) (ImportResult, error) {
	if len(rows) > MaxRollRows {
		return ImportResult{}, importError(0, "", "too_many_rows", "max", MaxRollRows)
	}
	var res ImportResult
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		plan, err := s.planRoll(ctx, tx, rows)
		if err != nil {
			return err
		}
		res, err = s.applyRoll(ctx, tx, plan)
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// rollState is what the directory holds, read once for checking a roll.
type rollState struct {
	units  map[string]*Unit
	occ    map[int64][]Occupancy // current occupancies by unit id, owners first
	people map[string][]Person   // by personKey, oldest first
}

func personKey(name, phone string) string { return name + "\x00" + phone }

func (s *Service) loadRollState(ctx context.Context, q store.Q) (*rollState, error) {
	st := &rollState{units: map[string]*Unit{}, occ: map[int64][]Occupancy{}, people: map[string][]Person{}}
	var units []Unit
	if err := q.Select(ctx, &units, "SELECT "+unitCols+unitFrom+" WHERE u.site_id = ?", s.site.ID); err != nil {
		return nil, fmt.Errorf("estate: import roll: units: %w", err)
	}
	for i := range units {
		st.units[units[i].Code] = &units[i]
	}
	occ, err := s.occupancies(ctx, q, "u.site_id = ? AND o.moved_out_on IS NULL", s.site.ID)
	if err != nil {
		return nil, err
	}
	for _, o := range occ {
		st.occ[o.UnitID] = append(st.occ[o.UnitID], o)
	}
	var people []Person
	if err := q.Select(ctx, &people, "SELECT "+personCols+" FROM people WHERE site_id = ? ORDER BY id", s.site.ID); err != nil {
		return nil, fmt.Errorf("estate: import roll: people: %w", err)
	}
	for _, p := range people {
		k := personKey(p.Name, p.Phone)
		st.people[k] = append(st.people[k], p)
	}
	return st, nil
}

// unitPlan is one unit named in a roll.
type unitPlan struct {
	code     string
	line     int   // first row naming it
	existing *Unit // nil: to be created
	area     Area
	areaLine int // row that gave the area, 0 if none did
	handover string
	handLine int
	dbOwner  int64 // a current owner in the directory
	owner    int64 // the owner who confirms family members, set while applying
}

// residentPlan is one person row of a roll.
type residentPlan struct {
	line      int
	unit      *unitPlan
	person    PersonInput // normalised
	key       string      // personKey
	personID  int64       // the person already in the directory, 0 if new
	move      MoveIn
	unchanged bool
}

type rollPlan struct {
	units         []*unitPlan
	residents     []*residentPlan
	unchangedRows int // unit-only rows of existing units
}

// rollCheck collects the problems of a roll while planning it.
type rollCheck struct {
	st        *rollState
	today     string
	units     map[string]*unitPlan
	owners    map[string]bool // units with an owner row in the file
	seen      map[string]int  // unit + person → first line
	people    map[string]*residentPlan
	plan      rollPlan
	errs      []RowError
	rowFailed bool
}

func (c *rollCheck) bad(line int, field, code string, args ...any) {
	c.errs = append(c.errs, RowError{Line: line, Field: field, Code: code, Args: argMap(args)})
	c.rowFailed = true
}

// fromFault records a validator's error against field (or the field the
// error names).
func (c *rollCheck) fromFault(line int, field string, err error) {
	fe, ok := fault.As(err)
	if !ok {
		c.bad(line, field, "invalid", "reason", err.Error())
		return
	}
	if fe.Field != "" {
		field = rollField(fe.Field)
	}
	c.errs = append(c.errs, RowError{Line: line, Field: field, Code: fe.Code, Args: fe.Args})
	c.rowFailed = true
}

// rollField names, as a roll column, a field the service's validators
// report.
func rollField(f string) string {
	switch f {
	case "code":
		return "unit"
	case "consent_note":
		return "note"
	case "confirmed_by":
		return "role"
	case "person", "person_id":
		return "name"
	}
	return f
}

func (s *Service) planRoll(ctx context.Context, tx *store.Tx, rows []RollRow) (*rollPlan, error) {
	st, err := s.loadRollState(ctx, tx)
	if err != nil {
		return nil, err
	}
	c := &rollCheck{st: st, today: s.Today(), units: map[string]*unitPlan{}, owners: map[string]bool{},
		seen: map[string]int{}, people: map[string]*residentPlan{}}
	// Family rows may come before their owner's row.
	for _, r := range rows {
		if u, err := ParseUnitCode(r.Unit); err == nil && strings.TrimSpace(r.Name) != "" && lookupCode(roleCodes, r.Role) == Owner {
			c.owners[u.String()] = true
		}
	}
	for _, r := range rows {
		c.row(r)
	}
	if len(c.errs) > 0 {
		sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
		return nil, &ImportError{Rows: c.errs}
	}
	return &c.plan, nil
}

// row checks one roll row and adds it to the plan.
func (c *rollCheck) row(r RollRow) {
	c.rowFailed = false
	line := r.Line
	up := c.unit(r)
	if strings.TrimSpace(r.Name) == "" {
		fields := filled(&r, "phone", "id_type", "id_last4", "role", "moved_in_on", "lease_start", "lease_end", "consent_method", "note")
		if len(fields) > 0 {
			c.bad(line, fields[0], "person_fields_on_unit_row", "fields", fields)
		} else if up != nil && up.existing != nil {
			c.plan.unchangedRows++
		}
		return
	}

	person, errs := normalizePerson(PersonInput{Name: r.Name, Phone: r.Phone, IDType: lookupCode(idTypeCodes, r.IDType), IDLast4: r.IDLast4})
	for _, err := range errs {
		c.fromFault(line, "name", err)
	}
	personOK := len(errs) == 0
	role := lookupCode(roleCodes, r.Role)
	if !slices.Contains([]string{Owner, Family, Tenant}, role) {
		c.bad(line, "role", "occupancy_role_invalid", "value", strings.TrimSpace(r.Role))
		role = ""
	}
	move := MoveIn{Role: role, MovedInOn: c.today, ConsentNote: strings.TrimSpace(r.Note)}
	movedGiven := strings.TrimSpace(r.MovedInOn) != ""
	if movedGiven {
		d, err := ParseDate("moved_in_on", r.MovedInOn)
		if err != nil {
			c.fromFault(line, "moved_in_on", err)
		}
		move.MovedInOn = d
	}
	// The same checks, in the same order, as moveIn makes.
	switch role {
	case Tenant:
		move.ConsentMethod = lookupCode(consentCodes, r.ConsentMethod)
		ls, le, errs := checkTenancy(r.LeaseStart, r.LeaseEnd, move.ConsentMethod, move.ConsentNote)
		for _, err := range errs {
			c.fromFault(line, err.Field, err)
		}
		move.LeaseStart, move.LeaseEnd = ls, le
	case Owner, Family:
		if fields := filled(&r, "lease_start", "lease_end", "consent_method"); len(fields) > 0 {
			c.bad(line, fields[0], "lease_fields_on_non_tenant", "fields", fields)
		}
		if role == Family && up != nil && !c.owners[up.code] && up.dbOwner == 0 {
			c.bad(line, "role", "family_without_owner")
		}
	}
	if err := checkNote(move.ConsentNote); err != nil {
		c.fromFault(line, "note", err)
	}
	if !personOK || up == nil || role == "" {
		return
	}

	rp := &residentPlan{line: line, unit: up, person: person, key: personKey(person.Name, person.Phone), move: move}
	if first, ok := c.seen[up.code+"\x00"+rp.key]; ok {
		c.bad(line, "name", "duplicate_row", "first_line", first)
		return
	}
	c.seen[up.code+"\x00"+rp.key] = line
	if first, ok := c.people[rp.key]; ok {
		// The same person on another row: their ID must read the same.
		if first.person.IDType != person.IDType {
			c.bad(line, "id_type", "person_fields_disagree", "first_line", first.line)
		} else if first.person.IDLast4 != person.IDLast4 {
			c.bad(line, "id_last4", "person_fields_disagree", "first_line", first.line)
		}
	} else {
		c.people[rp.key] = rp
	}
	if known := c.st.people[rp.key]; len(known) > 0 {
		for _, p := range known {
			if p.IDType == person.IDType && p.IDLast4 == person.IDLast4 {
				rp.personID = p.ID
				break
			}
		}
		if rp.personID == 0 {
			// Same name and phone, another ID: never guess which is right.
			field := "id_last4"
			if known[0].IDType != person.IDType {
				field = "id_type"
			}
			c.bad(line, field, "person_conflicts_existing", "person_id", known[0].ID)
		}
	}
	if rp.personID != 0 && up.existing != nil {
		for _, o := range c.st.occ[up.existing.ID] {
			if o.PersonID != rp.personID {
				continue
			}
			if o.Role != role {
				c.bad(line, "role", "already_resident", "role", o.Role)
				break
			}
			c.sameOccupancy(line, o, move, movedGiven)
			rp.unchanged = true
			break
		}
	}
	if !c.rowFailed {
		c.plan.residents = append(c.plan.residents, rp)
	}
}

// normalizePerson runs PersonInput.Normalize, which stops at the first bad
// field, until it has found every bad field: each one found is replaced by
// a valid stand-in and the check run again.
func normalizePerson(in PersonInput) (PersonInput, []error) {
	var errs []error
	for range 4 {
		p := in
		err := p.Normalize()
		if err == nil {
			if len(errs) > 0 {
				return in, errs
			}
			return p, nil
		}
		errs = append(errs, err)
		fe, ok := fault.As(err)
		if !ok {
			return in, errs
		}
		switch fe.Field {
		case "name":
			in.Name = "x"
		case "phone":
			in.Phone = "13800000000"
		case "id_type":
			in.IDType = "other"
		case "id_last4":
			in.IDLast4 = "0000"
		default:
			return in, errs
		}
	}
	return in, errs
}

// sameOccupancy checks that a row describing someone already living in the
// unit says what the directory says: nothing is silently left different.
func (c *rollCheck) sameOccupancy(line int, o Occupancy, move MoveIn, movedGiven bool) {
	differ := func(field, have, want string) {
		c.bad(line, field, "occupancy_conflicts_existing", "existing", have, "value", want)
	}
	if movedGiven && move.MovedInOn != "" && move.MovedInOn != o.MovedInOn {
		differ("moved_in_on", o.MovedInOn, move.MovedInOn)
	}
	if o.Role != Tenant {
		return
	}
	if s := deref(o.LeaseStart); move.LeaseStart != "" && move.LeaseStart != s {
		differ("lease_start", s, move.LeaseStart)
	}
	if s := deref(o.LeaseEnd); move.LeaseEnd != "" && move.LeaseEnd != s {
		differ("lease_end", s, move.LeaseEnd)
	}
	if s := deref(o.ConsentMethod); slices.Contains(ConsentMethods, move.ConsentMethod) && move.ConsentMethod != s {
		differ("consent_method", s, move.ConsentMethod)
	}
}

// filled returns those of the columns named by keys that r fills.
func filled(r *RollRow, keys ...string) []string {
	var out []string
	for _, k := range keys {
		if strings.TrimSpace(*rollColumns[rollHeaders[k]].cell(r)) != "" {
			out = append(out, k)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// unit checks a row's unit columns and returns the unit's plan, nil if the
// unit code is bad.
func (c *rollCheck) unit(r RollRow) *unitPlan {
	line := r.Line
	var code string
	if strings.TrimSpace(r.Unit) == "" {
		c.bad(line, "unit", "unit_required")
	} else if uc, err := ParseUnitCode(r.Unit); err != nil {
		c.fromFault(line, "unit", err)
	} else {
		code = uc.String()
	}
	in := UnitInput{Code: code}
	areaGiven := strings.TrimSpace(r.Area) != ""
	if areaGiven {
		a, err := ParseArea(r.Area)
		if err != nil {
			c.fromFault(line, "area_m2", err)
			areaGiven = false
		}
		in.Area = a
	}
	handGiven := strings.TrimSpace(r.HandoverDate) != ""
	if handGiven {
		d, err := ParseDate("handover_date", r.HandoverDate)
		if err != nil {
			c.fromFault(line, "handover_date", err)
			handGiven = false
		}
		in.HandoverDate = d
	}
	if code == "" {
		return nil
	}
	// The rules CreateUnit applies beyond parsing (the area's range).
	if _, _, err := in.normalize(); err != nil {
		c.fromFault(line, "area_m2", err)
		areaGiven = false
	}
	up := c.units[code]
	if up == nil {
		up = &unitPlan{code: code, line: line, existing: c.st.units[code]}
		if up.existing != nil {
			for _, o := range c.st.occ[up.existing.ID] {
				if o.Role == Owner {
					up.dbOwner = o.PersonID
					break
				}
			}
		}
		c.units[code] = up
		c.plan.units = append(c.plan.units, up)
	}
	if areaGiven {
		switch {
		case up.existing != nil:
			if up.existing.Area != in.Area {
				c.bad(line, "area_m2", "unit_conflicts_existing", "existing", up.existing.Area.String(), "value", in.Area.String())
			}
		case up.areaLine == 0:
			up.area, up.areaLine = in.Area, line
		case up.area != in.Area:
			c.bad(line, "area_m2", "unit_fields_disagree", "first_line", up.areaLine, "expected", up.area.String(), "value", in.Area.String())
		}
	}
	if handGiven {
		switch {
		case up.existing != nil:
			if have := deref(up.existing.HandoverDate); have != in.HandoverDate {
				c.bad(line, "handover_date", "unit_conflicts_existing", "existing", have, "value", in.HandoverDate)
			}
		case up.handLine == 0:
			up.handover, up.handLine = in.HandoverDate, line
		case up.handover != in.HandoverDate:
			c.bad(line, "handover_date", "unit_fields_disagree", "first_line", up.handLine, "expected", up.handover, "value", in.HandoverDate)
		}
	}
	return up
}

// applyRoll writes a checked plan: new units, then owners, family members
// and tenants, then one audit row for the import.
func (s *Service) applyRoll(ctx context.Context, tx *store.Tx, p *rollPlan) (ImportResult, error) {
	var res ImportResult
	for _, up := range p.units {
		if up.existing != nil {
			continue
		}
		if _, err := s.createUnit(ctx, tx, UnitInput{Code: up.code, Area: up.area, HandoverDate: up.handover}); err != nil {
			return res, rowFailure(up.line, err)
		}
		res.UnitsCreated++
	}
	res.Unchanged += p.unchangedRows
	created := map[string]int64{} // personKey → person created by this import
	for _, role := range []string{Owner, Family, Tenant} {
		for _, rp := range p.residents {
			if rp.move.Role != role {
				continue
			}
			if rp.unchanged {
				if role == Owner && rp.unit.owner == 0 {
					rp.unit.owner = rp.personID
				}
				res.Unchanged++
				continue
			}
			in := rp.move
			if id := rp.personID; id != 0 {
				in.PersonID = id
			} else if id := created[rp.key]; id != 0 {
				in.PersonID = id
			} else {
				person := rp.person
				in.Person = &person
			}
			if role == Family {
				in.ConfirmedBy = rp.unit.owner
				if in.ConfirmedBy == 0 {
					in.ConfirmedBy = rp.unit.dbOwner
				}
			}
			o, err := s.moveIn(ctx, tx, rp.unit.code, in)
			if err != nil {
				return res, rowFailure(rp.line, err)
			}
			created[rp.key] = o.PersonID
			if role == Owner && rp.unit.owner == 0 {
				rp.unit.owner = o.PersonID
			}
			res.ResidentsCreated++
		}
	}
	if res.UnitsCreated+res.ResidentsCreated > 0 {
		// An import that changed nothing leaves no trace, as it should.
		if err := auth.Record(ctx, tx, auth.Entry{Action: "estate.import", Entity: "site", EntityID: s.site.ID, After: res}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// rowFailure ties an error met while applying a row to its line. The
// checks should have caught every invalid row; a conflict (someone else
// changing the directory meanwhile) keeps its kind.
func rowFailure(line int, err error) error {
	if fe, ok := fault.As(err); ok && errors.Is(err, fault.ErrInvalid) {
		return &ImportError{Rows: []RowError{{Line: line, Field: rollField(fe.Field), Code: fe.Code, Args: fe.Args}}}
	}
	return fmt.Errorf("estate: import roll, line %d: %w", line, err)
}

// rollLine is one unit, and one of its current occupants if it has any, as
// the export reads them.
type rollLine struct {
	Code          string  `db:"code"`
	Area          Area    `db:"area_centi_m2"`
	HandoverDate  *string `db:"handover_date"`
	Name          *string `db:"name"`
	Phone         *string `db:"phone"`
	IDType        *string `db:"id_type"`
	IDLast4       *string `db:"id_last4"`
	Role          *string `db:"role"`
	MovedInOn     *string `db:"moved_in_on"`
	LeaseStart    *string `db:"lease_start"`
	LeaseEnd      *string `db:"lease_end"`
	ConsentMethod *string `db:"consent_method"`
	ConsentNote   *string `db:"consent_note"`
}

// ExportRoll writes the site's roll, format "csv" (UTF-8 with a byte-order
// mark, so that Excel reads it) or "xlsx": every unit, by building,
// entrance, floor and room, with one row per current occupant (owners,
// then family, then tenants) or a unit-only row for a unit with none.
// In CSV a cell a spreadsheet would run as a formula (starting =, +, - or
// @, such as an international phone number) is written behind an
// apostrophe, which ReadRoll takes off again. ReadRoll and ImportRoll read
// the export back unchanged.
func (s *Service) ExportRoll(ctx context.Context, w io.Writer, format string) error {
	f := rollFormat(format)
	if f != "csv" && f != "xlsx" {
		return fault.Invalid("format", "format_unsupported", "format", format)
	}
	rows, err := s.rollRows(ctx)
	if err != nil {
		return err
	}
	if f == "csv" {
		err = writeRollCSV(w, rows)
	} else {
		err = writeRollXLSX(w, rows)
	}
	if err != nil {
		return fmt.Errorf("estate: export roll: %w", err)
	}
	return nil
}

func (s *Service) rollRows(ctx context.Context) ([]RollRow, error) {
	// One statement, so the roll is one consistent snapshot.
	var lines []rollLine
	err := s.db.Select(ctx, &lines, `SELECT u.code, u.area_centi_m2, u.handover_date, p.name, p.phone, p.id_type, p.id_last4,
		o.role, o.moved_in_on, o.lease_start, o.lease_end, o.consent_method, o.consent_note`+unitFrom+`
		LEFT JOIN occupancies o ON o.unit_id = u.id AND o.moved_out_on IS NULL
		LEFT JOIN people p ON p.id = o.person_id
		WHERE u.site_id = ?
		ORDER BY b.number, e.number, u.floor, LENGTH(u.room), u.room,
			CASE o.role WHEN 'owner' THEN 0 WHEN 'family' THEN 1 ELSE 2 END, o.moved_in_on, o.id`, s.site.ID)
	if err != nil {
		return nil, fmt.Errorf("estate: export roll: %w", err)
	}
	rows := make([]RollRow, len(lines))
	for i, l := range lines {
		r := RollRow{Line: i + 2, Unit: l.Code, HandoverDate: deref(l.HandoverDate)}
		if l.Area != 0 {
			r.Area = l.Area.String()
		}
		if l.Role != nil {
			r.Name, r.Phone, r.IDLast4 = deref(l.Name), deref(l.Phone), deref(l.IDLast4)
			r.IDType = label(idTypeLabels, deref(l.IDType))
			r.Role = label(roleLabels, *l.Role)
			r.MovedInOn = deref(l.MovedInOn)
			r.LeaseStart, r.LeaseEnd = deref(l.LeaseStart), deref(l.LeaseEnd)
			r.ConsentMethod = label(consentLabels, deref(l.ConsentMethod))
			r.Note = deref(l.ConsentNote)
		}
		rows[i] = r
	}
	return rows, nil
}

func label(labels map[string]string, code string) string {
	if l, ok := labels[code]; ok {
		return l
	}
	return code
}

func rollRecord(r *RollRow) []string {
	rec := make([]string, len(rollColumns))
	for i, c := range rollColumns {
		rec[i] = *c.cell(r)
	}
	return rec
}

func rollHeader() []string {
	h := make([]string, len(rollColumns))
	for i, c := range rollColumns {
		h[i] = c.zh
	}
	return h
}

func writeRollCSV(w io.Writer, rows []RollRow) error {
	if _, err := w.Write(utf8BOM); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(rollHeader()); err != nil {
		return err
	}
	for i := range rows {
		rec := rollRecord(&rows[i])
		for j := range rec {
			rec[j] = guardCell(rec[j])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeRollXLSX writes one sheet with every cell as text (format "@"), so
// that Excel keeps an ID's leading zero or a long phone number when the
// clerk edits the file.
func writeRollXLSX(w io.Writer, rows []RollRow) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "业主花名册"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	text, err := f.NewStyle(&excelize.Style{NumFmt: 49})
	if err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{NumFmt: 49, Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	if err := sw.SetColWidth(1, len(rollColumns), 14); err != nil {
		return err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	put := func(row int, values []string, style int) error {
		cells := make([]any, len(values))
		for i, v := range values {
			c := excelize.Cell{StyleID: style}
			if v != "" {
				c.Value = v
			}
			cells[i] = c
		}
		ref, err := excelize.CoordinatesToCellName(1, row)
		if err != nil {
			return err
		}
		return sw.SetRow(ref, cells)
	}
	if err := put(1, rollHeader(), bold); err != nil {
		return err
	}
	for i := range rows {
		if err := put(i+2, rollRecord(&rows[i]), text); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}
