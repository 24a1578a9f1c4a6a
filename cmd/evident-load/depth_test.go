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
