package phot

import "testing"

// One call through Plugin.InferInto on the fixtures' first version (the Go host's request path
// without the Swapper). bench_overhead.py compares the hosts end to end.
func BenchmarkInferInto(b *testing.B) {
	f := fixtures(b)
	p := f.open(b, f.Versions[0].SO)
	defer p.Close()
	inputs := []Tensor{f.input}
	buf := make([]byte, 4*len(f.Versions[0].want))
	outs := make([]Tensor, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		outs[0] = Tensor{Data: buf, Shape: outs[0].Shape[:0]}
		if err := p.InferInto(bg, inputs, outs); err != nil {
			b.Fatal(err)
		}
	}
}
