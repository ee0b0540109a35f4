package net

import (
	"fmt"
	"testing"
)

func TestNodeLogf(t *testing.T) {
	var got string
	logf := nodeLogf(func(format string, args ...any) { got = fmt.Sprintf(format, args...) })
	tests := []struct {
		format string
		args   []any
		want   string
	}{
		{"peer %d at %s: %v", []any{NodeID(3), "127.0.0.1:19094", "EOF"}, "peer node 2 at 127.0.0.1:19094: EOF"},
		{"peer %d: group %d: %v", []any{NodeID(1), uint64(7), "x"}, "peer node 0: group 7: x"},
		{"peer listener: %v", []any{"closed"}, "peer listener: closed"},
		{"peer %d at %s", []any{uint64(3), "a"}, "peer 3 at a"}, // not a NodeID: as is
	}
	for _, tt := range tests {
		logf(tt.format, tt.args...)
		if got != tt.want {
			t.Errorf("%q %v: %q, want %q", tt.format, tt.args, got, tt.want)
		}
	}
	if nodeLogf(nil) != nil {
		t.Error("nodeLogf(nil) is not nil")
	}
}
