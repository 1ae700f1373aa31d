package phot

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Real plugins for the tests, built by tests/test_host_go.py with the paddlehot CLI
// (export + build-plugin of two versions of demo:mlp). PHOT_TEST_FIXTURES names its JSON file.
type fixtureVersion struct {
	SO       string    `json:"so"`
	Version  string    `json:"version"`
	Expected string    `json:"expected"`
	want     []float32 // loaded from Expected
}

type fixtureSet struct {
	CAPI  string `json:"capi"`
	Input struct {
		Name  string  `json:"name"`
		DType string  `json:"dtype"`
		Shape []int64 `json:"shape"`
		File  string  `json:"file"`
	} `json:"input"`
	Versions []*fixtureVersion `json:"versions"`
	// Two versions of a model with ~17 MB of weights (tests/models/wide_mlp.py), for the
	// release test: one version must stand out from the allocators' noise.
	Wide  []*fixtureVersion `json:"wide"`
	input Tensor
}

func fixtures(t testing.TB) *fixtureSet {
	t.Helper()
	path := os.Getenv("PHOT_TEST_FIXTURES")
	if path == "" {
		t.Skip("PHOT_TEST_FIXTURES is not set: run tests/test_host_go.py, which builds real plugins")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixtureSet
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	dt, err := ParseDType(f.Input.DType)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(f.Input.File)
	if err != nil {
		t.Fatal(err)
	}
	f.input = Tensor{Name: f.Input.Name, DType: dt, Shape: f.Input.Shape, Data: data}
	for _, v := range append(append([]*fixtureVersion(nil), f.Versions...), f.Wide...) {
		b, err := os.ReadFile(v.Expected)
		if err != nil {
			t.Fatal(err)
		}
		v.want = append([]float32(nil), (&Tensor{DType: Float32, Data: b}).Float32s()...)
	}
	if len(f.Versions) != 2 {
		t.Fatalf("want 2 versions in %s, got %d", path, len(f.Versions))
	}
	return &f
}

// open loads a plugin with the fixtures' C API library.
func (f *fixtureSet) open(t testing.TB, path string, opts ...Option) *Plugin {
	t.Helper()
	p, err := Open(path, append([]Option{WithCAPILibrary(f.CAPI)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// copyTo copies a plugin to dir/name (each swap of the memory test loads a distinct file).
func copyTo(t testing.TB, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// sameOutput applies the C host's rule |got - want| <= 1e-5 + 1e-4 |want|.
func sameOutput(out Tensor, want []float32) bool {
	got := out.Float32s()
	if out.DType != Float32 || len(got) != len(want) {
		return false
	}
	for i := range want {
		if !(math.Abs(float64(got[i]-want[i])) <= 1e-5+1e-4*math.Abs(float64(want[i]))) {
			return false
		}
	}
	return true
}

func (f *fixtureSet) versionOf(p *Plugin) *fixtureVersion {
	for _, v := range append(append([]*fixtureVersion(nil), f.Versions...), f.Wide...) {
		if v.Version == p.Manifest().Version {
			return v
		}
	}
	return nil
}

// mapped says whether any mapping of this process comes from path.
func mapped(t testing.TB, path string) bool {
	t.Helper()
	fh, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), " "+path) {
			return true
		}
	}
	return false
}

// rssKiB is VmRSS of this process.
func rssKiB(t testing.TB) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

var bg = context.Background()
