package main

import "testing"

// -proof-sizes takes exactly two sizes, the smaller first, each bounded.
func TestParseSizesRefusesBadLists(t *testing.T) {
	if got, err := parseSizes("10000, 1000000"); err != nil || got != [2]int{10000, 1000000} {
		t.Fatalf("parseSizes(10000, 1000000) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "10000", "1,2,3", "0,10", "-1,10", "10,10", "100,10", "10,x", "10,99999999999"} {
		if got, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) = %v, want an error", bad, got)
		}
	}
}

// Whatever -proof-sizes says, parseSizes returns two sizes in bounds, the
// smaller first, or an error; it never panics.
func FuzzParseSizes(f *testing.F) {
	for _, s := range []string{"10000,1000000", " 1 , 2 ", "0,1", "5,5", "1,2,3", ",", "9999999999999999999999,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSizes(s)
		if err != nil {
			return
		}
		if got[0] < 1 || got[0] >= got[1] || got[1] > maxDepthSize {
			t.Fatalf("parseSizes(%q) = %v", s, got)
		}
	})
}
