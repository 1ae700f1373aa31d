package phot

// #include "cabi.h"
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// cLoop times n calls of infer made from a C loop on this plugin (one input, one output into
// out): the C host's cost per call, the baseline the overhead benchmark subtracts.
func (p *Plugin) cLoop(in Tensor, out []byte, n int) (time.Duration, error) {
	k := specIndex(p.manifest.Inputs, in.Name)
	if k < 0 || len(in.Data) == 0 || len(out) == 0 || len(in.Shape) > MaxRank {
		return 0, fmt.Errorf("cLoop: bad input or output")
	}
	if !p.acquire() {
		return 0, p.fail("infer", Closed, "the plugin is closed")
	}
	defer p.release()
	desc := C.phot_tensor{struct_size: C.uint32_t(C.sizeof_phot_tensor), dtype: C.phot_dtype(in.DType),
		name: p.inNames[k], rank: C.int32_t(len(in.Shape)), byte_size: C.uint64_t(len(in.Data))}
	for j, v := range in.Shape {
		desc.shape[j] = C.int64_t(v)
	}
	ns := C.phot_go_c_loop(p.fn[fnInfer], p.handle, &desc, unsafe.Pointer(&in.Data[0]),
		unsafe.Pointer(&out[0]), C.uint64_t(len(out)), C.int64_t(n))
	if ns < 0 {
		return 0, p.fail("infer", Code(ns), "in the C loop")
	}
	return time.Duration(ns), nil
}
