package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

// MaxLoadReportBytes bounds the chronik-load report read with -load-report.
const MaxLoadReportBytes = 256 << 20

// loadReport is the part of chronik-load's JSON report the verifier reads: what each
// producer sent.
type loadReport struct {
	Producers []struct {
		ID     string `json:"id"` // 16 hex digits, as in the record key
		Sent   uint64 `json:"sent"`
		Acked  uint64 `json:"acked"`
		Failed uint64 `json:"failed"`
	} `json:"producers"`
}

// expectFromReport tells chk what the producers in chronik-load's report at path sent.
func expectFromReport(chk *Checker, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("load report: %w", err)
	}
	if st.Size() > MaxLoadReportBytes {
		return fmt.Errorf("load report %s: %d bytes, over the limit of %d", path, st.Size(), MaxLoadReportBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load report: %w", err)
	}
	var rep loadReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("load report %s: %w", path, err)
	}
	for _, p := range rep.Producers {
		id, err := strconv.ParseUint(p.ID, 16, 64)
		if err != nil {
			return fmt.Errorf("load report %s: producer id %q: %w", path, p.ID, err)
		}
		if p.Acked+p.Failed != p.Sent {
			return fmt.Errorf("load report %s: producer %s: acked %d + failed %d != sent %d", path, p.ID, p.Acked, p.Failed, p.Sent)
		}
		if !chk.Expect(id, p.Sent, p.Failed) {
			return fmt.Errorf("load report %s: more than %d producers", path, MaxProducers)
		}
	}
	return nil
}
