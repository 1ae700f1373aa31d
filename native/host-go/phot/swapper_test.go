package phot

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// traffic runs n goroutines of calls through s until stop is closed, checking every output
// against the expected output of the version that answered.
type traffic struct {
	calls, failed atomic.Int64
	perVersion    sync.Map // version string -> *atomic.Int64
	wg            sync.WaitGroup
	stop          chan struct{}
	firstError    atomic.Value
}

func startTraffic(t *testing.T, f *fixtureSet, s *Swapper, n int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for i := 0; i < n; i++ {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				outs, p, err := s.Infer(bg, []Tensor{f.input})
				tr.calls.Add(1)
				if err != nil {
					tr.fail(err)
					continue
				}
				v := f.versionOf(p)
				if v == nil || !sameOutput(outs[0], v.want) {
					tr.fail(fmt.Errorf("%s answered a wrong output", p.Manifest()))
					continue
				}
				c, _ := tr.perVersion.LoadOrStore(v.Version, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
			}
		}()
	}
	return tr
}

func (tr *traffic) fail(err error) {
	tr.failed.Add(1)
	tr.firstError.CompareAndSwap(nil, err.Error())
}

func (tr *traffic) finish() {
	close(tr.stop)
	tr.wg.Wait()
}

func (tr *traffic) served(version string) int64 {
	c, ok := tr.perVersion.Load(version)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// waitCalls lets at least n more calls complete.
func (tr *traffic) waitCalls(n int64) {
	target := tr.calls.Load() + n
	for tr.calls.Load() < target {
		time.Sleep(100 * time.Microsecond)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Two versions in one process, 8 goroutines, 20 swaps: no call fails, every output is the
// answering version's, and each replaced version leaves the process.
func TestSwapUnderTraffic(t *testing.T) {
	f := fixtures(t)
	goroutines, swaps := envInt("PHOT_TEST_GOROUTINES", 8), envInt("PHOT_TEST_SWAPS", 20)
	s := NewSwapper(f.open(t, f.Versions[0].SO, WithPool(1, 4)))
	tr := startTraffic(t, f, s, goroutines)
	for k := 1; k <= swaps; k++ {
		tr.waitCalls(20)
		old := s.Live()
		next := f.open(t, f.Versions[k%2].SO, WithPool(1, 4))
		if err := s.Swap(bg, next); err != nil {
			t.Fatalf("swap %d: %v", k, err)
		}
		if old.InFlight() != 0 {
			t.Fatalf("swap %d: the old version still has calls in flight", k)
		}
	}
	tr.waitCalls(20)
	tr.finish()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	v1, v2 := tr.served(f.Versions[0].Version), tr.served(f.Versions[1].Version)
	t.Logf("swap test: %d goroutines, %d swaps, %d calls (%d on %s, %d on %s), %d failed",
		goroutines, swaps, tr.calls.Load(), v1, f.Versions[0].Version, v2, f.Versions[1].Version, tr.failed.Load())
	if tr.failed.Load() != 0 {
		t.Fatalf("%d failed calls, first: %v", tr.failed.Load(), tr.firstError.Load())
	}
	if v1 == 0 || v2 == 0 || v1+v2 != tr.calls.Load() {
		t.Fatalf("calls per version: %d + %d of %d", v1, v2, tr.calls.Load())
	}
	for _, v := range f.Versions {
		if mapped(t, v.SO) {
			t.Errorf("%s is still mapped after Close", v.SO)
		}
	}
}

// 50 swaps of a model with ~17 MB of weights, each to a freshly copied file (as a service meets
// new versions): every released plugin is gone from /proc/self/maps and RSS grows by no more than
// one version.
func TestFiftySwapsReleasePlugins(t *testing.T) {
	f := fixtures(t)
	swaps := envInt("PHOT_TEST_RELEASE_SWAPS", 50)
	if len(f.Wide) != 2 {
		t.Fatal("the fixtures have no 2 \"wide\" versions")
	}
	dir := t.TempDir()
	file := func(k int) string {
		return copyTo(t, f.Wide[k%2].SO, dir, fmt.Sprintf("mlp-%03d.so", k))
	}
	s := NewSwapper(f.open(t, file(0)))
	tr := startTraffic(t, f, s, envInt("PHOT_TEST_RELEASE_GOROUTINES", 2))
	var stillMapped []string
	swap := func(k int) {
		tr.waitCalls(5)
		old := s.Live().Path()
		if err := s.Swap(bg, f.open(t, file(k))); err != nil {
			t.Fatalf("swap %d: %v", k, err)
		}
		if mapped(t, old) {
			stillMapped = append(stillMapped, old)
		}
	}
	// RSS is the median of samples taken after each of 5 swaps: one sample moves by about 1 MiB
	// with what the C allocators hold at that instant.
	sampled := func(from int) int64 {
		var samples []int64
		for k := from; k < from+5; k++ {
			swap(k)
			samples = append(samples, rssKiB(t))
		}
		return medianKiB(samples)
	}
	// Warm-up until RSS settles: what Python, Paddle and the threads calling in allocate once per
	// process (interpreter state, per-thread caches, malloc arenas) is not a leak. Measured on
	// the demo MLP: anonymous memory climbs for 20 to 40 swaps, then stays (file-backed memory and
	// Go's runtime.MemStats.Sys stay flat throughout). A leak never settles: that fails too.
	maxWarmup := envInt("PHOT_TEST_WARMUP_SWAPS", 150)
	warmup, prev := 5, sampled(1)
	boundRSS := swaps >= 50 // a shortened run (the -race pass) only exercises the paths
	for boundRSS {
		cur := sampled(warmup + 1)
		warmup += 5
		if cur-prev <= 256 {
			break
		}
		if warmup >= maxWarmup {
			t.Fatalf("RSS still grows after %d swaps (%d KiB in the last 5): a leak per swap", warmup, cur-prev)
		}
		prev = cur
	}
	// One version's footprint: open and warm four more beside the live one.
	before := rssKiB(t)
	var extras []*Plugin
	for k := 0; k < 4; k++ {
		p := f.open(t, file(900+k))
		if err := WarmZeros(bg, p); err != nil {
			t.Fatal(err)
		}
		extras = append(extras, p)
	}
	oneVersion := (rssKiB(t) - before) / int64(len(extras))
	for _, p := range extras {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	base, threadsBefore := sampled(warmup+1), threads(t)
	warmup += 5
	for k := warmup + 1; k <= warmup+swaps-5; k++ {
		swap(k)
	}
	end, threadsAfter := sampled(warmup+swaps-4), threads(t)
	tr.finish()
	for k := 900; k < 904; k++ { // the side-by-side versions
		if mapped(t, fileAt(dir, k)) {
			stillMapped = append(stillMapped, fileAt(dir, k))
		}
	}
	if !mapped(t, fileAt(dir, warmup+swaps)) {
		t.Error("the live version is not mapped")
	}
	t.Logf("release test: %d swaps after %d warm-up swaps, %d calls, %d failed; RSS (median of 5) %d KiB before, %d KiB after (%+d KiB); one version %d KiB; threads %d -> %d; released plugins still mapped: %d",
		swaps, warmup, tr.calls.Load(), tr.failed.Load(), base, end, end-base, oneVersion, threadsBefore, threadsAfter, len(stillMapped))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if tr.failed.Load() != 0 {
		t.Fatalf("%d failed calls, first: %v", tr.failed.Load(), tr.firstError.Load())
	}
	if len(stillMapped) > 0 {
		t.Errorf("released plugins still in /proc/self/maps (dlclose did not unload them): %v", stillMapped[:min(3, len(stillMapped))])
	}
	// glibc raises its mmap threshold when a big block is freed, so later weights come from the
	// heap and freed versions stay resident (measured: up to 1.3 versions more after 50 swaps).
	// With the threshold fixed (GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072, as
	// tests/test_host_go.py runs this) freed weights go back to the system: one version bounds
	// the growth. Without it, two (the old and the new version live together during a swap).
	limit, why := oneVersion, "one version"
	if !strings.Contains(os.Getenv("GLIBC_TUNABLES"), "glibc.malloc.mmap_threshold=") {
		limit, why = 2*oneVersion, "two versions (glibc's mmap threshold is not fixed)"
	}
	if boundRSS && end-base > limit {
		t.Errorf("RSS grew by %d KiB over %d swaps, more than %s (%d KiB each)", end-base, swaps, why, oneVersion)
	}
}

func fileAt(dir string, k int) string { return fmt.Sprintf("%s/mlp-%03d.so", dir, k) }

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func medianKiB(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func threads(t testing.TB) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "Threads:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}
