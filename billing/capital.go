package billing

import "strings"

var capDigits = []rune("零壹贰叁肆伍陆柒捌玖")

// Capital writes an amount in fen in Chinese capital numerals (大写) as
// receipts and cheques write it: 壹佰贰拾元整, 壹万元零伍分, 伍角整. A zero
// between digits is written once (壹仟零伍元); a whole group of zeros
// between 万 and 亿 groups too (壹亿零壹元); 整 follows 元 or 角 when
// there are no 分. Negative amounts start with 负.
func Capital(fen int64) string {
	var b strings.Builder
	if fen < 0 {
		b.WriteString("负")
		fen = -fen // fen == MinInt64 cannot be a real amount; it prints garbled, not wrong-signed
	}
	yuan, jiao, f := fen/100, (fen/10)%10, fen%10
	if yuan > 0 {
		writeYuan(&b, yuan)
		b.WriteString("元")
	}
	switch {
	case jiao == 0 && f == 0:
		if yuan == 0 {
			b.WriteString("零元")
		}
		b.WriteString("整")
	case jiao == 0:
		if yuan > 0 {
			b.WriteString("零")
		}
		b.WriteRune(capDigits[f])
		b.WriteString("分")
	default:
		b.WriteRune(capDigits[jiao])
		b.WriteString("角")
		if f == 0 {
			b.WriteString("整")
		} else {
			b.WriteRune(capDigits[f])
			b.WriteString("分")
		}
	}
	return b.String()
}

// writeYuan writes n > 0 in groups of four digits (个, 万, 亿, 万亿, 亿亿).
func writeYuan(b *strings.Builder, n int64) {
	var groups []int64
	for ; n > 0; n /= 10000 {
		groups = append(groups, n%10000)
	}
	sections := []string{"", "万", "亿", "万亿", "亿亿"}
	written, skipped := false, false
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		if g == 0 {
			skipped = written
			continue
		}
		if written && (g < 1000 || skipped) {
			b.WriteString("零")
		}
		writeGroup(b, g)
		b.WriteString(sections[i])
		written, skipped = true, false
	}
}

// writeGroup writes 1 ≤ g ≤ 9999: 壹仟零伍, 壹拾, 叁佰零贰.
func writeGroup(b *strings.Builder, g int64) {
	units := []string{"仟", "佰", "拾", ""}
	digits := []int64{g / 1000, g / 100 % 10, g / 10 % 10, g % 10}
	started, zero := false, false
	for i, d := range digits {
		if d == 0 {
			zero = started
			continue
		}
		if zero {
			b.WriteString("零")
		}
		b.WriteRune(capDigits[d])
		b.WriteString(units[i])
		started, zero = true, false
	}
}
