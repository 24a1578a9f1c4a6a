package rfc3161

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestAccuracy covers V4: a token's accuracy widens the window every
// certificate must cover, so a negative part (which would narrow it) or one
// that overflows time.Duration (which could wrap to a small or negative
// window) is refused, not computed.
func TestAccuracy(t *testing.T) {
	for _, c := range []struct {
		a    accuracy
		want time.Duration
		msg  string
	}{
		{accuracy{Seconds: 1}, time.Second, ""},
		{accuracy{Seconds: 1, Millis: 500, Micros: 1}, 1500001 * time.Microsecond, ""},
		{accuracy{Seconds: 86400}, MaxAccuracy, ""},
		{accuracy{Seconds: 2, Millis: -500}, 0, "bad accuracy"},
		{accuracy{Seconds: -1}, 0, "bad accuracy"},
		{accuracy{Micros: -1}, 0, "bad accuracy"},
		{accuracy{Millis: 1000}, 0, "bad accuracy"},
		{accuracy{Seconds: 86400, Millis: 1}, 0, "over the limit"},
		{accuracy{Seconds: math.MaxInt64 / int64(time.Second) * 2}, 0, "over the limit"},
		{accuracy{Seconds: math.MaxInt64}, 0, "over the limit"},
	} {
		got, err := c.a.duration()
		if c.msg == "" && (err != nil || got != c.want) || c.msg != "" && (err == nil || !strings.Contains(err.Error(), c.msg)) {
			t.Errorf("%+v.duration() = %v, %v, want %v %q", c.a, got, err, c.want, c.msg)
		}
	}
}
