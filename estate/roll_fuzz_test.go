package estate_test

import (
	"bytes"
	"errors"
	"testing"

	"onecard/estate"
)

// FuzzReadRoll feeds ReadRoll arbitrary CSV bytes: it must not panic, every
// failure must be an *ImportError, and rows must come back in file order,
// after the header.
func FuzzReadRoll(f *testing.F) {
	f.Add([]byte(goodRoll))
	f.Add([]byte("\uFEFFunit,name,phone,id_type,id_last4,role\n3-2-1801,张伟,13800138000,resident_id,123X,owner\n"))
	f.Add([]byte("title\n" + rollHeaderZH + "1-1-101,\"a\r\nb\",,,,,,,,,,,'=x\n\n,,\n"))
	f.Add([]byte(rollHeaderZH + "1-1-101,\"x\"y\n"))
	f.Add([]byte("\xb7\xbf\xba\xc5,\xd0\xd5\xc3\xfb\n1\n")) // 房号,姓名 in GBK
	f.Add([]byte("\xFF\xFE\x00"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := estate.ReadRoll(bytes.NewReader(data), "csv")
		if err != nil {
			var ie *estate.ImportError
			if !errors.As(err, &ie) || len(ie.Rows) == 0 {
				t.Fatalf("error %T %v is not an ImportError with rows", err, err)
			}
			if rows != nil {
				t.Fatalf("rows returned with an error")
			}
			return
		}
		last := 1
		for _, r := range rows {
			if r.Line < 2 || r.Line <= last {
				t.Fatalf("row line %d after line %d", r.Line, last)
			}
			last = r.Line
		}
	})
}
