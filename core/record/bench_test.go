package record

import "testing"

// BenchmarkValidate validates a batch of 16 records of 1000-byte text values, about
// 16 KiB uncompressed, with a reused Validator and with the package-level Validate.
// Throughput counts the uncompressed records section.
func BenchmarkValidate(b *testing.B) {
	recs := textRecords(3, 16, 1000)
	section := len(encodeRecords(recs))
	for _, cc := range codecCases {
		batch := buildBatch(b, cc, 0, recs)
		b.Run(cc.name, func(b *testing.B) {
			b.SetBytes(int64(section))
			b.ReportAllocs()
			var v Validator
			for b.Loop() {
				if _, err := v.Validate(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(batch)), "batch-bytes")
		})
		b.Run(cc.name+"/fresh", func(b *testing.B) {
			b.SetBytes(int64(section))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Validate(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
