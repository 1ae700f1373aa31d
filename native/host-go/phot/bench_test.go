package phot

import (
	"os"
	"sort"
	"testing"
	"time"
)

// One call through Plugin.InferInto on the fixtures' first version (the Go host's request path
// without the Swapper).
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

// The Go host's cost per call over a C host's, on one plugin handle in one process: rounds of
// BLOCK calls through InferInto and BLOCK calls from a C loop (what native/host's worker does),
// alternating which goes first. Reports the medians of the per-call means and the median of the per-round
// differences (a burst of load on a shared machine hits both halves of a round alike). Run with
// -benchtime 1x; PHOT_BENCH_ROUNDS and PHOT_BENCH_BLOCK set the size.
func BenchmarkOverheadVersusC(b *testing.B) {
	f := fixtures(b)
	p := f.open(b, f.Versions[0].SO)
	defer p.Close()
	rounds, block := envInt("PHOT_BENCH_ROUNDS", 60), envInt("PHOT_BENCH_BLOCK", 200)
	inputs := []Tensor{f.input}
	buf := make([]byte, 4*len(f.Versions[0].want))
	outs := make([]Tensor, 1)
	var goUS, cUS, diffUS []float64
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			var g, c float64
			halves := []func(){
				func() {
					t0 := time.Now()
					for k := 0; k < block; k++ {
						outs[0] = Tensor{Data: buf, Shape: outs[0].Shape[:0]}
						if err := p.InferInto(bg, inputs, outs); err != nil {
							b.Fatal(err)
						}
					}
					g = float64(time.Since(t0).Nanoseconds()) / 1e3 / float64(block)
				},
				func() {
					d, err := p.cLoop(f.input, buf, block)
					if err != nil {
						b.Fatal(err)
					}
					c = float64(d.Nanoseconds()) / 1e3 / float64(block)
				},
			}
			halves[r%2]() // alternate which half goes first
			halves[1-r%2]()
			goUS, cUS, diffUS = append(goUS, g), append(cUS, c), append(diffUS, g-c)
		}
	}
	g, c := median(goUS), median(cUS)
	b.ReportMetric(minimum(goUS)-minimum(cUS), "best-overhead-us/call")
	b.ReportMetric(g, "go-us/call")
	b.ReportMetric(c, "c-us/call")
	b.ReportMetric(median(diffUS), "overhead-us/call")
	if os.Getenv("PHOT_BENCH_VERBOSE") != "" {
		b.Logf("go %v\nc %v", goUS, cUS)
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func minimum(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x < m {
			m = x
		}
	}
	return m
}
