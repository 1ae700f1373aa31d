package phot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Swapper serves one model from its live version and replaces that version under traffic.
//
// Contract: a request runs entirely on one version; Swap never drops or fails a request; the
// old version is closed and unloaded only after its last call in flight returns. The request
// path takes no lock: one atomic load of the live version plus the version's in-flight count.
type Swapper struct {
	live atomic.Pointer[Plugin]
	mu   sync.Mutex // serialises Swap and Close; never taken by Infer

	// Warm runs on a new version before it takes traffic; an error keeps the old version live.
	// The default (WarmZeros) runs one call on zero inputs.
	Warm func(ctx context.Context, p *Plugin) error
}

// NewSwapper serves first (already open) until the next Swap.
func NewSwapper(first *Plugin) *Swapper {
	s := &Swapper{Warm: WarmZeros}
	s.live.Store(first)
	return s
}

// Live is the version serving now (nil after Close).
func (s *Swapper) Live() *Plugin { return s.live.Load() }

// Infer runs inputs on the live version and returns the outputs and the version that answered.
func (s *Swapper) Infer(ctx context.Context, inputs []Tensor) ([]Tensor, *Plugin, error) {
	for {
		p := s.live.Load()
		if p == nil {
			return nil, nil, &Error{Op: "infer", Code: Closed, Message: "the swapper is closed"}
		}
		outs, err := p.Infer(ctx, inputs)
		if err != nil && errors.Is(err, ErrClosed) && s.live.Load() != p {
			continue // swapped and closed between the load and the call: the new version answers
		}
		return outs, p, err
	}
}

// InferInto is Infer with caller-provided outputs (see Plugin.InferInto).
func (s *Swapper) InferInto(ctx context.Context, inputs, outputs []Tensor) (*Plugin, error) {
	for {
		p := s.live.Load()
		if p == nil {
			return nil, &Error{Op: "infer", Code: Closed, Message: "the swapper is closed"}
		}
		err := p.InferInto(ctx, inputs, outputs)
		if err != nil && errors.Is(err, ErrClosed) && s.live.Load() != p {
			continue
		}
		return p, err
	}
}

// Swap warms next, makes it the live version, waits for the old version's calls in flight and
// closes it (close + dlclose). If warming fails the old version stays live and the caller still
// owns next. The returned error after the flip is the old version's Close error.
func (s *Swapper) Swap(ctx context.Context, next *Plugin) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.live.Load(); cur != nil && cur.manifest.Name != next.manifest.Name {
		return fmt.Errorf("phot: swap %s for %s: a Swapper serves one model", cur.manifest, next.manifest)
	}
	if s.Warm != nil {
		if err := s.Warm(ctx, next); err != nil {
			return fmt.Errorf("phot: warming %s: %w", next.manifest, err)
		}
	}
	old := s.live.Swap(next)
	if old == nil {
		return nil
	}
	return old.Close()
}

// Close stops serving and closes the live version.
func (s *Swapper) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.live.Swap(nil); old != nil {
		return old.Close()
	}
	return nil
}

// WarmZeros runs one call on zero-filled inputs (dynamic dimensions as 1).
func WarmZeros(ctx context.Context, p *Plugin) error {
	inputs := make([]Tensor, len(p.manifest.Inputs))
	for i, spec := range p.manifest.Inputs {
		shape := make([]int64, len(spec.Shape))
		for j, d := range spec.Shape {
			if shape[j] = d; d < 0 {
				shape[j] = 1
			}
		}
		inputs[i] = Tensor{Name: spec.Name, DType: spec.DType, Shape: shape}
		inputs[i].Data = make([]byte, int(inputs[i].Elements())*spec.DType.Size())
	}
	_, err := p.Infer(ctx, inputs)
	return err
}
