package phot

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// MaxRank is the most dimensions a tensor may have (PHOT_MAX_RANK).
const MaxRank = 8

// DType is an element type; the values are the ABI's PHOT_DTYPE_* codes.
type DType int32

const (
	Float32 DType = 1
	Float16 DType = 2
	Float64 DType = 3
	Int32   DType = 4
	Int64   DType = 5
	Uint8   DType = 6
	Int8    DType = 7
	Bool    DType = 8
)

var dtypeNames = map[DType]string{
	Float32: "float32", Float16: "float16", Float64: "float64", Int32: "int32",
	Int64: "int64", Uint8: "uint8", Int8: "int8", Bool: "bool",
}

var dtypeSizes = map[DType]int{
	Float32: 4, Float16: 2, Float64: 8, Int32: 4, Int64: 8, Uint8: 1, Int8: 1, Bool: 1,
}

// Size is the element size in bytes, 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// ParseDType turns "float32" (the manifest's spelling) into a DType.
func ParseDType(s string) (DType, error) {
	for d, name := range dtypeNames {
		if name == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}

// UnmarshalJSON reads the manifest's dtype names.
func (d *DType) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDType(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Tensor is one named tensor in C order. The caller owns Data: the host reads inputs from it
// and writes outputs into it during a call, and keeps no reference afterwards.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// Elements is the product of the shape (1 for a scalar).
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float32Tensor wraps a []float32 without copying: the tensor's Data is the same memory.
func Float32Tensor(name string, shape []int64, values []float32) Tensor {
	var data []byte
	if len(values) > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), len(values)*4)
	}
	return Tensor{Name: name, DType: Float32, Shape: shape, Data: data}
}

// Float32s views Data as float32s without copying (nil unless DType is Float32).
func (t *Tensor) Float32s() []float32 {
	if t.DType != Float32 || len(t.Data) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), len(t.Data)/4)
}
