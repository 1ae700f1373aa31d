package phot

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadManifestWithoutLoading(t *testing.T) {
	f := fixtures(t)
	m, err := ReadManifest(f.Versions[0].SO)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "mlp" || m.Version != f.Versions[0].Version || m.Plugin.SymbolPrefix != "phot_mlp_v1_0_0_" {
		t.Fatalf("manifest: %s, prefix %s", m, m.Plugin.SymbolPrefix)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].DType != Float32 || len(m.Inputs[0].Shape) != 2 {
		t.Fatalf("inputs: %+v", m.Inputs)
	}
	if mapped(t, f.Versions[0].SO) {
		t.Fatal("ReadManifest mapped the plugin")
	}
}

func TestInferMatchesExpectedAndCopyPath(t *testing.T) {
	f := fixtures(t)
	p := f.open(t, f.Versions[0].SO)
	defer p.Close()
	outs, err := p.Infer(bg, []Tensor{f.input})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || outs[0].Name != "logits" || !sameOutput(outs[0], f.Versions[0].want) {
		t.Fatalf("outputs %+v", outs)
	}
	if got := outs[0].Shape; len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("shape %v", got)
	}
	// Tensors past the argument slots travel through C memory: same result.
	defer func(n int) { argSlots = n }(argSlots)
	argSlots = 0
	outs, err = p.Infer(bg, []Tensor{f.input})
	if err != nil || !sameOutput(outs[0], f.Versions[0].want) {
		t.Fatalf("copy path: %v %+v", err, outs)
	}
}

func TestBufferTooSmallIsRetriedWithTheReportedSize(t *testing.T) {
	f := fixtures(t)
	p := f.open(t, f.Versions[0].SO)
	defer p.Close()
	// No capacity at all: the first call learns the size, the second succeeds.
	outs, attempts, err := p.inferGrowing(bg, []Tensor{f.input}, make([]Tensor, 1))
	if err != nil || attempts != 2 || !sameOutput(outs[0], f.Versions[0].want) {
		t.Fatalf("attempts %d, err %v", attempts, err)
	}
	// InferInto leaves the choice to the caller: an error, the needed shape, nothing written.
	small := bytes.Repeat([]byte{7}, 16)
	out := []Tensor{{Data: small}}
	err = p.InferInto(bg, []Tensor{f.input}, out)
	if !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("want ErrBufferTooSmall, got %v", err)
	}
	if s := out[0].Shape; len(s) != 2 || s[0] != 3 || s[1] != 4 || out[0].DType != Float32 {
		t.Fatalf("needed shape %v %v", s, out[0].DType)
	}
	if !bytes.Equal(small, bytes.Repeat([]byte{7}, 16)) {
		t.Fatal("the plugin wrote into a too-small buffer")
	}
}

func TestBadInputsAreGoErrors(t *testing.T) {
	f := fixtures(t)
	p := f.open(t, f.Versions[0].SO)
	x := f.input
	asFloat64 := Tensor{Name: "x", DType: Float64, Shape: x.Shape, Data: append(append([]byte(nil), x.Data...), x.Data...)}
	narrow := Tensor{Name: "x", DType: Float32, Shape: []int64{3, 15}, Data: x.Data[:3*15*4]}
	short := Tensor{Name: "x", DType: Float32, Shape: x.Shape, Data: x.Data[:len(x.Data)-4]}
	cases := []struct {
		name   string
		inputs []Tensor
		want   error
		says   string
	}{
		{"wrong dtype", []Tensor{asFloat64}, ErrDTypeMismatch, "float64"},
		{"wrong shape", []Tensor{narrow}, ErrShapeMismatch, "dim 1"},
		{"short data", []Tensor{short}, ErrShapeMismatch, ""},
		{"unknown input", []Tensor{x, {Name: "nope", DType: Float32, Shape: x.Shape, Data: x.Data}}, ErrUnknownInput, "nope"},
		{"missing input", nil, ErrMissingInput, "missing input 'x'"},
	}
	for _, c := range cases {
		_, err := p.Infer(bg, c.inputs)
		var e *Error
		if !errors.Is(err, c.want) || !errors.As(err, &e) || !bytes.Contains([]byte(e.Message), []byte(c.says)) {
			t.Errorf("%s: want %v saying %q, got %v", c.name, c.want, c.says, err)
		}
	}
	if _, err := p.Infer(bg, []Tensor{x}); err != nil {
		t.Fatalf("a good call after bad ones: %v", err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := p.Infer(ctx, []Tensor{x}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Infer(bg, []Tensor{x}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBadFilesAreRefusedBeforeLoading(t *testing.T) {
	f := fixtures(t)
	dir := t.TempDir()
	good, err := os.ReadFile(f.Versions[0].SO)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	lo, hi := sectionRange(t, f.Versions[0].SO, manifestSection)
	inManifest := func(old, new string) []byte {
		b := append([]byte(nil), good...)
		copy(b[lo:hi], bytes.Replace(b[lo:hi], []byte(old), []byte(new), 1))
		return b
	}
	futureMajor := func() []byte {
		b := append([]byte(nil), good...)
		at := lo + bytes.Index(b[lo:hi], []byte(`"abi_version": [`))
		at += bytes.IndexByte(b[at:hi], '1')
		b[at] = '9'
		return b
	}
	outsideManifest := func(old, new string) []byte {
		b := bytes.ReplaceAll(good, []byte(old), []byte(new))
		copy(b[lo:hi], good[lo:hi])
		return b
	}
	cases := []struct {
		name, path string
		notPlugin  bool // else: a plugin this host does not support
	}{
		{"non-plugin .so", f.CAPI, true},
		{"truncated", write("truncated.so", good[:len(good)/3]), true},
		{"not ELF", write("text.so", []byte("hello, this is not ELF\n")), true},
		{"empty", write("empty.so", nil), true},
		{"future schema", write("schema9.so", inManifest(`"schema_version": 1`, `"schema_version": 9`)), false},
		{"future ABI node", write("node9.so", inManifest(`"abi_node": "PADDLEHOT_1.0"`, `"abi_node": "PADDLEHOT_9.0"`)), false},
		{"future ABI major", write("major9.so", futureMajor()), false},
		{"exports on another node", write("verdef9.so", outsideManifest("PADDLEHOT_1.0", "PADDLEHOT_9.0")), false},
	}
	for _, c := range cases {
		p, err := Open(c.path, WithCAPILibrary(f.CAPI))
		if err == nil {
			p.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		var np *NotPluginError
		var un *UnsupportedError
		if (c.notPlugin && !errors.As(err, &np)) || (!c.notPlugin && !errors.As(err, &un)) {
			t.Errorf("%s: wrong error type %T: %v", c.name, err, err)
		}
		if c.path != f.CAPI && mapped(t, c.path) {
			t.Errorf("%s: refused but mapped", c.name)
		}
		t.Logf("%s: %v", c.name, err)
	}
}

func sectionRange(t *testing.T, path, name string) (int, int) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	s := ef.Section(name)
	if s == nil {
		t.Fatalf("%s has no %s", path, name)
	}
	return int(s.Offset), int(s.Offset + s.Size)
}

// Paddle and the embedded Python must leave Go's signal handlers alone: a nil dereference in Go
// code stays a recoverable panic after a plugin ran.
func TestGoSignalHandlingSurvivesThePlugin(t *testing.T) {
	f := fixtures(t)
	p := f.open(t, f.Versions[0].SO)
	defer p.Close()
	if _, err := p.Infer(bg, []Tensor{f.input}); err != nil {
		t.Fatal(err)
	}
	recovered := func() (r any) {
		defer func() { r = recover() }()
		var nilMap *Manifest
		_ = nilMap.Name
		return nil
	}()
	if recovered == nil {
		t.Fatal("no panic from a nil dereference")
	}
	t.Logf("handlers the plugin replaced and Open restored: %v", RestoredSignals())
}

// TestPoolIdleGivesPredictorsBackAndGrowsAgain: WithPoolIdle reaches the plugin (ABI 1.1). A
// pool of 1..2 that two goroutines grew gives its second predictor back once it has been idle,
// with no call to notice it: RSS falls by most of one predictor's weights. Then it grows again.
func TestPoolIdleGivesPredictorsBackAndGrowsAgain(t *testing.T) {
	f := fixtures(t)
	if len(f.Wide) == 0 {
		t.Skip("no wide fixture")
	}
	const weightsKiB = 16 * 1024 // tests/models/wide_mlp.py: ~17 MB of float32 weights
	p := f.open(t, f.Wide[0].SO, WithPool(1, 2), WithPoolIdle(500*time.Millisecond))
	defer p.Close()
	for round := 0; round < 2; round++ {
		base := rssKiB(t)
		var stop atomic.Bool
		var wg sync.WaitGroup
		failed := make(chan error, 2)
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					outs, err := p.Infer(bg, []Tensor{f.input})
					if err == nil && !sameOutput(outs[0], f.Wide[0].want) {
						err = errors.New("wrong answer")
					}
					if err != nil {
						failed <- err
						return
					}
				}
			}()
		}
		grown := waitFor(30*time.Second, func() bool { return rssKiB(t) > base+weightsKiB*6/10 })
		stop.Store(true)
		wg.Wait()
		close(failed)
		if err := <-failed; err != nil {
			t.Fatal(err)
		}
		if !grown {
			t.Fatalf("round %d: the pool did not grow (RSS %d -> %d KiB)", round, base, rssKiB(t))
		}
		top := rssKiB(t)
		if !waitFor(15*time.Second, func() bool { return rssKiB(t) < top-weightsKiB/2 }) {
			t.Fatalf("round %d: the idle predictor was not given back (RSS %d KiB grown, %d KiB now)", round, top, rssKiB(t))
		}
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
