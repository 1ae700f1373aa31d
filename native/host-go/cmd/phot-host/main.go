// phot-host: the Go twin of native/host/host.c, with the same flags and arguments.
//
// It loads version 1 of a model's plugin, runs -t goroutines of infer calls, swaps to version 2
// once calls are under way (and back and forth with -swaps K), drains and unloads each replaced
// version, and checks every result against the expected output of the version that answered.
// Exit 0 only if every call succeeded and matched, and both versions served calls.
//
//	phot-host [-t THREADS] [-n CALLS] [-p POOL_MAX] [-swaps K] [-capi LIB] [-json]
//	          -i NAME:DTYPE:D0,D1,...:INPUT.bin
//	          V1.so V1_PREFIX V1_EXPECTED.bin  V2.so V2_PREFIX V2_EXPECTED.bin
//
// INPUT.bin holds the raw input tensor (C order); EXPECTED.bin the raw float32 first output (in
// manifest order) for that input. PREFIX must equal the manifest's plugin.symbol_prefix. The
// plugins need libpaddle_inference_c.so: -capi LIB loads it, else LD_LIBRARY_PATH must find it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paddlehot/phot"
)

type version struct {
	label, path, prefix string
	expected            []float32
	calls               atomic.Int64
}

type config struct {
	threads, pool, swaps int
	idle                 time.Duration
	total                int64
	capi                 string
	input                phot.Tensor
	versions             [2]*version
	asJSON               bool
}

type report struct {
	Calls     int64              `json:"calls"`
	PerLabel  map[string]int64   `json:"calls_per_version"`
	Failed    int64              `json:"failed"`
	Threads   int                `json:"threads"`
	Swaps     int                `json:"swaps"`
	LatencyUS map[string]float64 `json:"latency_us"`
	WallS     float64            `json:"wall_s"`
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	rep, err := serve(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	if cfg.asJSON {
		json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		fmt.Printf("phot-host: %d calls on v1, %d on v2, %d failed, %d threads, %d swaps\n",
			rep.PerLabel["v1"], rep.PerLabel["v2"], rep.Failed, rep.Threads, rep.Swaps)
		l := rep.LatencyUS
		fmt.Printf("phot-host: per-call latency p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
			l["p50"], l["p90"], l["p99"], l["max"])
	}
	if rep.Failed == 0 && rep.PerLabel["v1"] > 0 && rep.PerLabel["v2"] > 0 {
		return 0
	}
	return 1
}

func parseArgs(args []string) (*config, error) {
	fs := flag.NewFlagSet("phot-host", flag.ContinueOnError)
	cfg := &config{}
	var total int
	var input string
	fs.IntVar(&cfg.threads, "t", 4, "goroutines calling infer")
	fs.IntVar(&total, "n", 400, "calls in all")
	fs.IntVar(&cfg.pool, "p", 0, "predictors per version (default: -t)")
	fs.DurationVar(&cfg.idle, "idle", 0, "idle time after which a predictor above 1 is destroyed (0: the plugin's 30s; negative: never)")
	fs.IntVar(&cfg.swaps, "swaps", 1, "swaps during the run (v1 -> v2 -> v1 ...; odd ends on v2)")
	fs.StringVar(&cfg.capi, "capi", "", "libpaddle_inference_c.so to load first (else LD_LIBRARY_PATH)")
	fs.StringVar(&input, "i", "", "NAME:DTYPE:D0,D1,...:INPUT.bin")
	fs.BoolVar(&cfg.asJSON, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: phot-host [-t THREADS] [-n CALLS] [-p POOL] [-idle D] [-swaps K] [-capi LIB] "+
			"-i NAME:DTYPE:D0,D1:INPUT.bin V1.so V1_PREFIX V1_EXPECTED.bin V2.so V2_PREFIX V2_EXPECTED.bin")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg.total = int64(total)
	if input == "" || fs.NArg() != 6 || cfg.threads < 1 || cfg.total < 2 || cfg.swaps < 1 {
		fs.Usage()
		return nil, errors.New("bad arguments")
	}
	if cfg.pool == 0 {
		cfg.pool = cfg.threads
	}
	t, err := parseInput(input)
	if err != nil {
		return nil, fmt.Errorf("bad -i %s: %v", input, err)
	}
	cfg.input = t
	for i := range cfg.versions {
		a := fs.Args()[3*i:]
		v := &version{label: fmt.Sprintf("v%d", i+1), path: a[0], prefix: a[1]}
		if v.expected, err = readFloat32s(a[2]); err != nil {
			return nil, err
		}
		cfg.versions[i] = v
	}
	return cfg, nil
}

// parseInput reads NAME:DTYPE:D0,D1:FILE into a tensor.
func parseInput(spec string) (phot.Tensor, error) {
	parts := strings.SplitN(spec, ":", 4)
	if len(parts) != 4 {
		return phot.Tensor{}, errors.New("want NAME:DTYPE:D0,D1,...:FILE")
	}
	dt, err := phot.ParseDType(parts[1])
	if err != nil {
		return phot.Tensor{}, err
	}
	t := phot.Tensor{Name: parts[0], DType: dt}
	for _, d := range strings.Split(parts[2], ",") {
		v, err := strconv.ParseInt(d, 10, 64)
		if err != nil || v < 0 {
			return phot.Tensor{}, fmt.Errorf("bad dimension %q", d)
		}
		t.Shape = append(t.Shape, v)
	}
	if t.Data, err = os.ReadFile(parts[3]); err != nil {
		return phot.Tensor{}, err
	}
	if want := t.Elements() * int64(dt.Size()); int64(len(t.Data)) != want {
		return phot.Tensor{}, fmt.Errorf("%s has %d bytes, the input needs %d", parts[3], len(t.Data), want)
	}
	return t, nil
}

func readFloat32s(path string) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil || len(raw)%4 != 0 || len(raw) == 0 {
		return nil, fmt.Errorf("cannot read float32s from %s: %v", path, err)
	}
	t := phot.Tensor{DType: phot.Float32, Data: raw}
	return append([]float32(nil), t.Float32s()...), nil
}

func (cfg *config) open(v *version) (*phot.Plugin, error) {
	opts := []phot.Option{phot.WithPool(1, cfg.pool), phot.WithPoolIdle(cfg.idle), phot.WithThreads(1)}
	if cfg.capi != "" {
		opts = append(opts, phot.WithCAPILibrary(cfg.capi))
	}
	p, err := phot.Open(v.path, opts...)
	if err != nil {
		return nil, err
	}
	if got := p.Manifest().Plugin.SymbolPrefix; got != v.prefix {
		p.Close()
		return nil, fmt.Errorf("%s: symbol prefix is %s, not %s", v.path, got, v.prefix)
	}
	return p, nil
}

// serve runs the workers and the swaps, then reports.
func serve(cfg *config) (*report, error) {
	ctx := context.Background()
	byPlugin := sync.Map{} // *phot.Plugin -> *version
	first, err := cfg.open(cfg.versions[0])
	if err != nil {
		return nil, err
	}
	byPlugin.Store(first, cfg.versions[0])
	s := phot.NewSwapper(first)
	// Warm-up checks the real input against the expected output: a wrong version never serves.
	s.Warm = func(ctx context.Context, p *phot.Plugin) error {
		v, _ := byPlugin.Load(p)
		return check(ctx, p, cfg.input, v.(*version).expected)
	}
	if err := s.Warm(ctx, first); err != nil {
		return nil, err
	}

	var done, failed atomic.Int64
	var stop atomic.Bool
	lat := make([][]time.Duration, cfg.threads)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat[w] = worker(ctx, cfg, s, &byPlugin, &stop, &done, &failed)
		}(w)
	}
	swaps := 0
	var swapErr error
	for k := 1; k <= cfg.swaps && swapErr == nil; k++ {
		for done.Load() < cfg.total*int64(k)/int64(cfg.swaps+1) {
			time.Sleep(200 * time.Microsecond)
		}
		next := cfg.versions[k%2]
		p, err := cfg.open(next)
		if err == nil {
			byPlugin.Store(p, next)
			if err = s.Swap(ctx, p); err != nil && s.Live() != p {
				p.Close()
			}
		}
		if err != nil {
			swapErr = fmt.Errorf("swap %d to %s: %w", k, next.label, err)
			break
		}
		swaps++
	}
	for swapErr == nil && done.Load() < cfg.total {
		time.Sleep(200 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	wall := time.Since(start)
	if err := s.Close(); err != nil && swapErr == nil {
		swapErr = err
	}
	if swapErr != nil {
		return nil, swapErr
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	rep := &report{
		Calls: done.Load(), Failed: failed.Load(), Threads: cfg.threads, Swaps: swaps,
		PerLabel:  map[string]int64{},
		LatencyUS: percentiles(all), WallS: wall.Seconds(),
	}
	for _, v := range cfg.versions {
		rep.PerLabel[v.label] = v.calls.Load()
	}
	return rep, nil
}

// worker calls infer until stop, into its own output buffer (no allocation per call).
func worker(ctx context.Context, cfg *config, s *phot.Swapper, byPlugin *sync.Map,
	stop *atomic.Bool, done, failed *atomic.Int64) []time.Duration {
	inputs := []phot.Tensor{cfg.input}
	buf := make([]byte, 4*maxExpected(cfg))
	outs := make([]phot.Tensor, 1)
	lat := make([]time.Duration, 0, cfg.total/int64(cfg.threads)+16)
	for !stop.Load() {
		outs[0] = phot.Tensor{Data: buf, Shape: outs[0].Shape[:0]}
		t0 := time.Now()
		p, err := s.InferInto(ctx, inputs, outs)
		lat = append(lat, time.Since(t0))
		ok := err == nil
		if err != nil {
			fmt.Fprintf(os.Stderr, "phot-host: infer: %v\n", err)
		} else {
			v, _ := byPlugin.Load(p)
			ver := v.(*version)
			ver.calls.Add(1)
			if msg := compare(outs[0], ver.expected); msg != "" {
				fmt.Fprintf(os.Stderr, "phot-host: %s: %s\n", ver.label, msg)
				ok = false
			}
		}
		if !ok {
			failed.Add(1)
		}
		done.Add(1)
	}
	return lat
}

func maxExpected(cfg *config) int {
	n := 0
	for _, v := range cfg.versions {
		if len(v.expected) > n {
			n = len(v.expected)
		}
	}
	return n
}

func check(ctx context.Context, p *phot.Plugin, input phot.Tensor, expected []float32) error {
	outs, err := p.Infer(ctx, []phot.Tensor{input})
	if err != nil {
		return err
	}
	if msg := compare(outs[0], expected); msg != "" {
		return fmt.Errorf("warm-up of %s: %s", p.Manifest(), msg)
	}
	return nil
}

// compare applies the C host's rule: |got - want| <= 1e-5 + 1e-4 |want| for every element.
func compare(out phot.Tensor, want []float32) string {
	got := out.Float32s()
	if out.DType != phot.Float32 || len(got) != len(want) {
		return fmt.Sprintf("output is %v with %d bytes, expected float32 with %d", out.DType, len(out.Data), 4*len(want))
	}
	for i := range want {
		if !(math.Abs(float64(got[i]-want[i])) <= 1e-5+1e-4*math.Abs(float64(want[i]))) {
			return fmt.Sprintf("output[%d] = %g, expected %g", i, got[i], want[i])
		}
	}
	return ""
}

func percentiles(d []time.Duration) map[string]float64 {
	out := map[string]float64{}
	if len(d) == 0 {
		return out
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	for _, q := range []struct {
		name string
		f    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}} {
		out[q.name] = us(d[int(q.f*float64(len(d)-1))])
	}
	out["max"] = us(d[len(d)-1])
	return out
}
