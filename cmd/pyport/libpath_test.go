package main

import (
	"os"
	"testing"
)

func TestRestoreLibraryPath(t *testing.T) {
	for _, tc := range []struct {
		name, saved string
		set         bool
		want        string
		wantSet     bool
	}{
		{"none saved", "", false, "/py/lib", true},
		{"none before", "-", true, "", false},
		{"empty saved", "", true, "", false},
		{"saved", "/a:/b", true, "/a:/b", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LD_LIBRARY_PATH", "/py/lib")
			t.Setenv(savedLibraryPathEnv, "")
			if tc.set {
				os.Setenv(savedLibraryPathEnv, tc.saved)
			} else {
				os.Unsetenv(savedLibraryPathEnv)
			}
			restoreLibraryPath()
			got, ok := os.LookupEnv("LD_LIBRARY_PATH")
			if got != tc.want || ok != tc.wantSet {
				t.Errorf("LD_LIBRARY_PATH = %q (set %v), want %q (set %v)", got, ok, tc.want, tc.wantSet)
			}
			if _, ok := os.LookupEnv(savedLibraryPathEnv); ok {
				t.Errorf("%s still set", savedLibraryPathEnv)
			}
		})
	}
}
