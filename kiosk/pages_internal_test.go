package kiosk

import "testing"

func TestCutAndFill(t *testing.T) {
	k, c := holeMarks[0], holeMarks[1]
	for _, tc := range []struct{ body, want string }{
		{"no holes", "no holes"},
		{"<a>" + k + "</a>", "<a>KEY</a>"},
		{c + "|" + k + "|" + c, "CSRF|KEY|CSRF"},
		{k + k, "KEYKEY"},
		{"x" + c, "xCSRF"},
	} {
		pg := cut([]byte(tc.body), 7)
		if got := string(pg.fill([len(holeMarks)]string{"KEY", "CSRF"})); got != tc.want || pg.stamp != 7 {
			t.Errorf("cut(%q) filled = %q, want %q", tc.body, got, tc.want)
		}
	}
	var p pages
	key := pageKey{unit: "1-1-101", lang: "zh"}
	p.put(key, cut([]byte("page"), 3))
	if _, ok := p.get(key, 3); !ok {
		t.Fatal("the page kept for reading 3 is not found")
	}
	if _, ok := p.get(key, 4); ok {
		t.Fatal("the page of reading 3 was served for reading 4")
	}
	if _, ok := p.get(pageKey{unit: "1-1-101", lang: "en"}, 3); ok {
		t.Fatal("the Chinese page was served in English")
	}
}
