package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Langs are the languages of the screens; the first is the default.
var Langs = []string{"zh", "en"}

// LangCookie remembers the chosen language.
const LangCookie = "onecard_lang"

//go:embed locales/*.json
var localeFS embed.FS

var catalogs = map[string]map[string]string{}

func init() {
	for _, l := range Langs {
		b, err := localeFS.ReadFile("locales/" + l + ".json")
		if err != nil {
			panic(fmt.Sprintf("web: catalog %s: %v", l, err))
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("web: catalog %s: %v", l, err))
		}
		catalogs[l] = m
	}
}

// Catalog returns the keys of a language's catalog (for tests).
func Catalog(lang string) []string {
	var keys []string
	for k := range catalogs[lang] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// T translates key into lang, filling {name} placeholders from args. A
// missing key falls back to the default language, then to the key itself.
func T(lang, key string, args map[string]any) string {
	msg, ok := catalogs[lang][key]
	if !ok {
		msg, ok = catalogs[Langs[0]][key]
	}
	if !ok {
		if strings.HasPrefix(key, "err.") {
			return T(lang, "err.generic", nil)
		}
		return key
	}
	for k, v := range args {
		s := fmt.Sprint(v)
		if list, ok := v.([]string); ok {
			s = strings.Join(list, ", ")
		}
		msg = strings.ReplaceAll(msg, "{"+k+"}", s)
	}
	return msg
}

// Lang is the caller's language: the cookie set by the language switch;
// else, for the API only, Accept-Language; else Chinese. Screens stay
// Chinese by default even in a browser set to English: the desk's staff
// switch on purpose.
func Lang(c *fiber.Ctx) string {
	if l := c.Cookies(LangCookie); l != "" {
		for _, x := range Langs {
			if l == x {
				return l
			}
		}
	}
	if al := c.Get(fiber.HeaderAcceptLanguage); IsAPI(c) && strings.HasPrefix(al, "en") {
		return "en"
	}
	return Langs[0]
}
