package web_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/web"
)

func TestCatalogsHaveTheSameKeys(t *testing.T) {
	zh, en := web.Catalog("zh"), web.Catalog("en")
	if !slices.Equal(zh, en) {
		for _, k := range zh {
			if !slices.Contains(en, k) {
				t.Errorf("en lacks %s", k)
			}
		}
		for _, k := range en {
			if !slices.Contains(zh, k) {
				t.Errorf("zh lacks %s", k)
			}
		}
	}
}

var (
	templateKey = regexp.MustCompile(`\{\{t \$?\.L "([a-z0-9_.]+)"`)
	// Error codes as the domain packages write them.
	codeCall = regexp.MustCompile(`fault\.(?:Invalid|Conflict)\("[a-z0-9_]*", "([a-z0-9_]+)"|fault\.(?:NotFound|Forbidden)\("([a-z0-9_]+)"\)|Kind: fault\.Err[A-Za-z]+, Code: +"([a-z0-9_]+)"|rowErr\([^,]+, "[a-z0-9_]*", "([a-z0-9_]+)"`)
	tCall    = regexp.MustCompile(`web\.T\([^,]+, "([a-z0-9_.]+)"`)
)

// TestEveryMessageIsTranslated scans the templates and the Go sources for
// message keys and error codes and checks each is in the catalog.
func TestEveryMessageIsTranslated(t *testing.T) {
	keys := web.Catalog("zh")
	found := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), "onecard-")) {
			return filepath.SkipDir
		}
		isTmpl := strings.HasSuffix(path, ".html")
		isGo := strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go")
		if !isTmpl && !isGo {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		check := func(key string) {
			found++
			if !slices.Contains(keys, key) {
				t.Errorf("%s: %q is not in the catalogs", path, key)
			}
		}
		if isTmpl {
			for _, m := range templateKey.FindAllStringSubmatch(string(b), -1) {
				check(m[1])
			}
			return nil
		}
		for _, m := range codeCall.FindAllStringSubmatch(string(b), -1) {
			for _, g := range m[1:] {
				if g != "" {
					check("err." + g)
				}
			}
		}
		for _, m := range tCall.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasSuffix(m[1], ".") {
				check(m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 150 {
		t.Fatalf("only %d keys found: the scan is not seeing the sources", found)
	}
	for _, prefix := range []string{"role.", "idtype.", "consent."} {
		n := 0
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no %s* keys", prefix)
		}
	}
}

func TestTFillsArgsAndFallsBack(t *testing.T) {
	if got := web.T("en", "err.password_too_short", map[string]any{"min": 10}); got != "A password needs at least 10 characters." {
		t.Fatalf("T = %q", got)
	}
	if got := web.T("en", "err.no_such_code", nil); got != web.T("en", "err.generic", nil) {
		t.Fatalf("unknown error code: %q", got)
	}
}

// Labels made at run time from a list ("evkind." + an event's kind) are
// not seen by the scan above: every value of those lists has a label.
func TestListedValuesAreTranslated(t *testing.T) {
	keys := web.Catalog("zh")
	for prefix, values := range map[string][]string{
		"evkind.":   proto.EventKinds,
		"evreason.": proto.DenyReasons,
		"devkind.":  fleet.Kinds,
	} {
		for _, v := range values {
			if !slices.Contains(keys, prefix+v) {
				t.Errorf("%q is not in the catalogs", prefix+v)
			}
		}
	}
}
