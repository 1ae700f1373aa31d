// Package phot loads paddlehot model plugins (.so files built by `paddlehot build-plugin`) into
// a Go process through their C ABI (native/include/paddlehot/plugin.h), and swaps versions under
// traffic without a lock on the request path (see Swapper).
//
// Threads and the embedded interpreter: plugins built against paddlehot's pdcapi run Paddle in an
// embedded CPython. pdcapi starts it on the first open (from whichever OS thread makes that call),
// gives every OS thread that calls in a lasting thread state, and takes the GIL inside each call,
// so no goroutine needs runtime.LockOSThread. What is per-OS-thread is last_error(): it is read in
// the same C call that failed (see cabi.c), never in a later cgo call.
package phot

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -O2
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "cabi.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const argSlotsC = C.PHOT_GO_ARG_SLOTS

// argSlots is how many tensors per call pass their Go memory to C as arguments (zero copy); the
// rest are copied through C memory. A variable so the tests can exercise the copy path.
var argSlots = argSlotsC

// Option configures Open.
type Option func(*openOptions)

type openOptions struct {
	poolInitial, poolMax, threads int32
	poolIdleMs                    int32
	modelDir                      string
	capi                          string
}

// WithPool sets how many predictors open() creates and how many may ever be alive (the number
// of calls that run at once on one version).
func WithPool(initial, max int) Option {
	return func(o *openOptions) { o.poolInitial, o.poolMax = int32(initial), int32(max) }
}

// WithPoolIdle sets how long a predictor above the initial pool size may stay idle before the
// plugin destroys it (its memory goes back to the system; the pool grows again under load). Zero
// keeps the plugin's default (30 s), a negative duration never shrinks the pool. Plugins of ABI
// 1.0 (manifest abi_version [1, 0]) ignore it: their pools never shrink.
func WithPoolIdle(d time.Duration) Option {
	return func(o *openOptions) {
		switch ms := d.Milliseconds(); {
		case d < 0:
			o.poolIdleMs = -1
		case d > 0 && ms == 0:
			o.poolIdleMs = 1
		case ms > math.MaxInt32:
			o.poolIdleMs = math.MaxInt32
		default:
			o.poolIdleMs = int32(ms)
		}
	}
}

// WithThreads sets the intra-op CPU threads of each predictor.
func WithThreads(n int) Option { return func(o *openOptions) { o.threads = int32(n) } }

// WithModelDir loads the model files from dir instead of the plugin's embedded copy.
func WithModelDir(dir string) Option { return func(o *openOptions) { o.modelDir = dir } }

// WithCAPILibrary loads libpaddle_inference_c.so from path (RTLD_GLOBAL, once per process, never
// unloaded) before the plugin, so its NEEDED entry resolves without LD_LIBRARY_PATH. This is how
// paddlehot's own loader uses the cached pdcapi build.
func WithCAPILibrary(path string) Option { return func(o *openOptions) { o.capi = path } }

// Plugin is one model version loaded from a plugin file. Its methods are safe for concurrent use.
type Plugin struct {
	path     string
	manifest *Manifest
	lib      unsafe.Pointer
	fn       [len(Functions)]unsafe.Pointer // open, infer, close, manifest, last_error
	handle   *C.phot_model
	inNames  []*C.char // C copies of the manifest's names, freed on Close
	outNames []*C.char
	modelDir *C.char

	inflight  atomic.Int64
	closing   atomic.Bool
	drained   chan struct{} // a release saw inflight reach 0 while closing
	calls     atomic.Int64
	closeOnce sync.Once
	closeErr  error
}

const (
	fnOpen = iota
	fnInfer
	fnClose
	fnManifest
	fnLastError
)

// Open checks the plugin's manifest and symbol versions from its ELF file, then loads it (dlopen
// RTLD_LOCAL), resolves its five functions and opens a handle.
func Open(path string, opts ...Option) (*Plugin, error) {
	o := openOptions{poolInitial: 1, threads: 1}
	for _, opt := range opts {
		opt(&o)
	}
	// dlopen searches the library path for a name without a slash: always name the file.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	m, err := ReadManifest(path)
	if err != nil {
		return nil, err
	}
	if o.capi != "" {
		if err := loadCAPI(o.capi); err != nil {
			return nil, err
		}
	}
	p := &Plugin{path: path, manifest: m, drained: make(chan struct{}, 1)}
	openMu.Lock()
	defer openMu.Unlock()
	C.phot_go_signals_save()
	defer restoreSignals()
	if err := p.load(); err != nil {
		return nil, err
	}
	if err := p.open(&o); err != nil {
		p.unload()
		return nil, err
	}
	return p, nil
}

// openMu keeps one Open's save/restore of signal handlers from interleaving with another's.
var openMu sync.Mutex

// restoredSignals: bit s-1 set for each signal s whose handler an open replaced.
var restoredSignals atomic.Uint64

func restoreSignals() {
	restoredSignals.Store(restoredSignals.Load() | uint64(C.phot_go_signals_restore()))
}

// RestoredSignals lists the signals whose handlers a plugin's open replaced and Open put back
// (Paddle installs its own; Go needs its own for panics, preemption and os/signal).
func RestoredSignals() []syscall.Signal {
	var out []syscall.Signal
	bits := restoredSignals.Load()
	for s := 1; s <= 64; s++ {
		if bits&(1<<(s-1)) != 0 {
			out = append(out, syscall.Signal(s))
		}
	}
	return out
}

func (p *Plugin) load() error {
	var errbuf [512]C.char
	cpath := C.CString(p.path)
	defer C.free(unsafe.Pointer(cpath))
	p.lib = C.phot_go_dlopen(cpath, 0, &errbuf[0], C.size_t(len(errbuf)))
	if p.lib == nil {
		return &LoadError{Path: p.path, Reason: C.GoString(&errbuf[0])}
	}
	for i, name := range Functions {
		cname := C.CString(p.manifest.Plugin.SymbolPrefix + name)
		p.fn[i] = C.phot_go_dlsym(p.lib, cname, &errbuf[0], C.size_t(len(errbuf)))
		C.free(unsafe.Pointer(cname))
		if p.fn[i] == nil {
			p.unload()
			return &LoadError{Path: p.path, Reason: C.GoString(&errbuf[0])}
		}
	}
	C.phot_go_pin_capi()
	// The file could have been replaced between reading it and mapping it.
	if loaded := C.GoString(C.phot_go_manifest(p.fn[fnManifest])); trimNUL(loaded) != string(p.manifest.Raw) {
		p.unload()
		return &LoadError{Path: p.path, Reason: "the loaded plugin's manifest() differs from its .paddlehot.manifest section (file replaced while loading?)"}
	}
	return nil
}

func (p *Plugin) open(o *openOptions) error {
	p.inNames = cNames(p.manifest.Inputs)
	p.outNames = cNames(p.manifest.Outputs)
	if o.modelDir != "" {
		p.modelDir = C.CString(o.modelDir)
	}
	var errbuf [1024]C.char
	var handle *C.phot_model
	rc := C.phot_go_open(p.fn[fnOpen], p.fn[fnLastError], C.int32_t(o.poolInitial), C.int32_t(o.poolMax),
		C.int32_t(o.threads), C.int32_t(o.poolIdleMs), p.modelDir, &handle, &errbuf[0], C.size_t(len(errbuf)))
	if rc != 0 {
		return p.fail("open", Code(rc), C.GoString(&errbuf[0]))
	}
	p.handle = handle
	return nil
}

// unload frees what load and open allocated and dlcloses the library.
func (p *Plugin) unload() error {
	for _, s := range append(p.inNames, p.outNames...) {
		C.free(unsafe.Pointer(s))
	}
	p.inNames, p.outNames = nil, nil
	if p.modelDir != nil {
		C.free(unsafe.Pointer(p.modelDir))
		p.modelDir = nil
	}
	if p.lib == nil {
		return nil
	}
	var errbuf [512]C.char
	rc := C.phot_go_dlclose(p.lib, &errbuf[0], C.size_t(len(errbuf)))
	p.lib = nil
	if rc != 0 {
		return &LoadError{Path: p.path, Reason: "dlclose: " + C.GoString(&errbuf[0])}
	}
	return nil
}

// Manifest is the plugin's manifest (read from the file; immutable).
func (p *Plugin) Manifest() *Manifest { return p.manifest }

// Path is the file the plugin was loaded from.
func (p *Plugin) Path() string { return p.path }

// Calls is the number of infer calls this version has served (successful or not).
func (p *Plugin) Calls() int64 { return p.calls.Load() }

// Infer runs the model on inputs and returns its outputs in manifest order, in memory this host
// allocated for the caller. An output larger than expected is retried with the size the plugin
// reports (PHOT_E_BUFFER_TOO_SMALL). ctx is checked before each native call; a started native
// call runs to completion.
func (p *Plugin) Infer(ctx context.Context, inputs []Tensor) ([]Tensor, error) {
	outs, _, err := p.inferGrowing(ctx, inputs, p.guessOutputs(inputs))
	return outs, err
}

func (p *Plugin) inferGrowing(ctx context.Context, inputs, outs []Tensor) ([]Tensor, int, error) {
	for attempt := 1; ; attempt++ {
		err := p.InferInto(ctx, inputs, outs)
		if err == nil || attempt == 3 || !errors.Is(err, ErrBufferTooSmall) {
			if err != nil {
				return nil, attempt, err
			}
			return outs, attempt, nil
		}
		for i := range outs { // the plugin wrote the shape it needs
			if need := int(outs[i].Elements()) * outs[i].DType.Size(); need > cap(outs[i].Data) {
				outs[i].Data = make([]byte, need)
			} else {
				outs[i].Data = outs[i].Data[:cap(outs[i].Data)]
			}
		}
	}
}

// guessOutputs allocates the outputs for the manifest's shapes, taking a dynamic dimension as
// the first input's batch size (a wrong guess costs one retry).
func (p *Plugin) guessOutputs(inputs []Tensor) []Tensor {
	batch := int64(1)
	if len(inputs) > 0 && len(inputs[0].Shape) > 0 && inputs[0].Shape[0] > 0 {
		batch = inputs[0].Shape[0]
	}
	outs := make([]Tensor, len(p.manifest.Outputs))
	for i, spec := range p.manifest.Outputs {
		shape := make([]int64, len(spec.Shape))
		for j, d := range spec.Shape {
			if shape[j] = d; d < 0 {
				shape[j] = batch
			}
		}
		outs[i] = Tensor{Name: spec.Name, DType: spec.DType, Shape: shape}
		outs[i].Data = make([]byte, int(outs[i].Elements())*spec.DType.Size())
	}
	return outs
}

// InferInto runs the model with caller-provided outputs: Data is the buffer (its length is the
// capacity); Name selects an output ("" takes outputs in manifest order). On success each
// output's DType and Shape are set (Shape reuses its backing array) and Data is resliced to the
// bytes written. When a buffer is
// too small nothing is written, Shape and DType say what is needed, and the error matches
// ErrBufferTooSmall.
func (p *Plugin) InferInto(ctx context.Context, inputs, outputs []Tensor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !p.acquire() {
		return p.fail("infer", Closed, "the plugin is closed")
	}
	defer p.release()
	p.calls.Add(1)
	return p.call(inputs, outputs)
}

// A call's descriptors and error buffer, reused across calls (no allocation per call).
type frame struct {
	descs []C.phot_tensor
	err   [1024]C.char
}

var frames = sync.Pool{New: func() any { return new(frame) }}

func (p *Plugin) call(inputs, outputs []Tensor) error {
	n := len(inputs) + len(outputs)
	f := frames.Get().(*frame)
	defer frames.Put(f)
	if cap(f.descs) < n {
		f.descs = make([]C.phot_tensor, n)
	}
	descs := f.descs[:n]
	var args [argSlotsC]unsafe.Pointer
	var copied []int // tensors passed through C memory
	defer func() {
		for _, i := range copied {
			C.free(descs[i].data)
		}
	}()
	for i := 0; i < n; i++ {
		t, names, specs := tensorAt(inputs, outputs, i, p)
		d := &descs[i]
		*d = C.phot_tensor{struct_size: C.uint32_t(C.sizeof_phot_tensor)}
		if t.Name != "" {
			k := specIndex(specs, t.Name)
			if k < 0 {
				return p.fail("infer", unknownCode(i < len(inputs)), fmt.Sprintf("the model has no %s %q", kind(i < len(inputs)), t.Name))
			}
			d.name = names[k]
		}
		if i < len(inputs) {
			if len(t.Shape) > MaxRank {
				return p.fail("infer", ShapeMismatch, fmt.Sprintf("input %q has rank %d, more than %d", t.Name, len(t.Shape), MaxRank))
			}
			d.dtype = C.phot_dtype(t.DType)
			d.rank = C.int32_t(len(t.Shape))
			for j, v := range t.Shape {
				d.shape[j] = C.int64_t(v)
			}
		}
		d.byte_size = C.uint64_t(len(t.Data))
		switch {
		case len(t.Data) == 0:
		case i < argSlots:
			args[i] = unsafe.Pointer(&t.Data[0])
		default:
			d.data = C.malloc(C.size_t(len(t.Data)))
			copied = append(copied, i)
			if i < len(inputs) {
				copy(unsafe.Slice((*byte)(d.data), len(t.Data)), t.Data)
			}
		}
	}
	rc := Code(C.phot_go_infer(p.fn[fnInfer], p.fn[fnLastError], p.handle, &descs[0],
		C.size_t(len(inputs)), C.size_t(len(outputs)),
		args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9],
		args[10], args[11], args[12], args[13], args[14], args[15], &f.err[0], C.size_t(len(f.err))))
	if rc != OK && rc != BufferTooSmall {
		return p.fail("infer", rc, C.GoString(&f.err[0]))
	}
	for k := range outputs {
		d, t := &descs[len(inputs)+k], &outputs[k]
		t.DType = DType(d.dtype)
		rank := int(d.rank)
		if rank < 0 || rank > MaxRank {
			return p.fail("infer", InvalidArgument, fmt.Sprintf("the plugin returned rank %d", rank))
		}
		t.Shape = t.Shape[:0]
		for j := 0; j < rank; j++ {
			t.Shape = append(t.Shape, int64(d.shape[j]))
		}
		if t.Name == "" {
			t.Name = p.manifest.Outputs[k].Name
		}
		if rc == OK {
			if int(d.byte_size) > len(t.Data) {
				return p.fail("infer", InvalidArgument, "the plugin wrote more bytes than the buffer holds")
			}
			if d.data != nil {
				copy(t.Data, unsafe.Slice((*byte)(d.data), int(d.byte_size)))
			}
			t.Data = t.Data[:int(d.byte_size)]
		}
	}
	if rc == BufferTooSmall {
		return p.fail("infer", rc, C.GoString(&f.err[0]))
	}
	return nil
}

func tensorAt(inputs, outputs []Tensor, i int, p *Plugin) (*Tensor, []*C.char, []TensorSpec) {
	if i < len(inputs) {
		return &inputs[i], p.inNames, p.manifest.Inputs
	}
	return &outputs[i-len(inputs)], p.outNames, p.manifest.Outputs
}

func specIndex(specs []TensorSpec, name string) int {
	for k := range specs {
		if specs[k].Name == name {
			return k
		}
	}
	return -1
}

func unknownCode(input bool) Code {
	if input {
		return UnknownInput
	}
	return InvalidArgument
}

func kind(input bool) string {
	if input {
		return "input"
	}
	return "output"
}

// Close waits for the calls in flight, closes the handle and unloads the library. Later calls
// fail with ErrClosed. Safe to call more than once; every call returns the first result.
func (p *Plugin) Close() error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		p.waitDrained()
		var errbuf [1024]C.char
		if rc := Code(C.phot_go_close(p.fn[fnClose], p.fn[fnLastError], p.handle, &errbuf[0], C.size_t(len(errbuf)))); rc != OK {
			// The handle may still be alive: keep the code mapped rather than risk a crash.
			p.closeErr = p.fail("close", rc, C.GoString(&errbuf[0])+" (library left loaded)")
			return
		}
		p.closeErr = p.unload()
	})
	return p.closeErr
}

// acquire counts a call in flight unless the plugin is closing. With release and waitDrained it
// is the whole drain protocol: two atomics, no lock.
func (p *Plugin) acquire() bool {
	p.inflight.Add(1)
	if p.closing.Load() {
		p.release()
		return false
	}
	return true
}

func (p *Plugin) release() {
	if p.inflight.Add(-1) == 0 && p.closing.Load() {
		select {
		case p.drained <- struct{}{}:
		default:
		}
	}
}

func (p *Plugin) waitDrained() {
	for p.inflight.Load() != 0 {
		select {
		case <-p.drained:
		case <-time.After(50 * time.Millisecond): // belt and braces; the signal is enough
		}
	}
}

// InFlight is the number of calls running on this version now.
func (p *Plugin) InFlight() int64 { return p.inflight.Load() }

func (p *Plugin) fail(op string, code Code, msg string) error {
	return &Error{Op: op, Model: p.manifest.String(), Code: code, Message: msg}
}

func cNames(specs []TensorSpec) []*C.char {
	out := make([]*C.char, len(specs))
	for i, s := range specs {
		out[i] = C.CString(s.Name)
	}
	return out
}

func trimNUL(s string) string {
	for len(s) > 0 && s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	return s
}

var (
	capiMu     sync.Mutex
	capiLoaded = map[string]bool{}
)

// loadCAPI dlopens the Paddle Inference C library RTLD_GLOBAL once per path; it stays loaded.
func loadCAPI(path string) error {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	capiMu.Lock()
	defer capiMu.Unlock()
	if capiLoaded[path] {
		return nil
	}
	var errbuf [512]C.char
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.phot_go_dlopen(cpath, 1, &errbuf[0], C.size_t(len(errbuf))) == nil {
		return &LoadError{Path: path, Reason: C.GoString(&errbuf[0])}
	}
	capiLoaded[path] = true
	return nil
}
