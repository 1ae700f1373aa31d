package phot

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// The manifest a plugin carries in its .paddlehot.manifest section (the package's paddlehot.json
// plus a "plugin" object). Only what a host needs is decoded; Raw keeps the whole text.

const (
	// SchemaVersion is the manifest schema this host reads.
	SchemaVersion = 1
	// ABINode is the GNU symbol version node every export must be bound to (PHOT_ABI_NODE).
	ABINode = "PADDLEHOT_1.0"
	// ABIMajor is the plugin ABI major revision this host speaks (PHOT_ABI_MAJOR).
	ABIMajor = 1
)

// Functions are the five exports, each named symbol_prefix + function.
var Functions = [...]string{"open", "infer", "close", "manifest", "last_error"}

// A precision variant's plugin (1.2.0-int8) ends in _<precision>_ (docs/variants.md).
var prefixPattern = regexp.MustCompile(`^phot_[a-z0-9_]+_v[0-9]+_[0-9]+_[0-9]+_((bf16|int8)_)?$`)

// TensorSpec is one input or output of the model; -1 in Shape is a dynamic dimension.
type TensorSpec struct {
	Name  string  `json:"name"`
	DType DType   `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// PluginInfo is the manifest's "plugin" object.
type PluginInfo struct {
	ABINode      string            `json:"abi_node"`
	ABIVersion   []int             `json:"abi_version"`
	SymbolPrefix string            `json:"symbol_prefix"`
	Target       string            `json:"target"`
	CAPI         string            `json:"c_api"`
	StructSizes  map[string]uint32 `json:"struct_sizes"`
}

// Manifest describes one model version.
type Manifest struct {
	SchemaVersion int          `json:"schema_version"`
	Name          string       `json:"name"`
	Version       string       `json:"version"`
	Format        string       `json:"format"`
	Inputs        []TensorSpec `json:"inputs"`
	Outputs       []TensorSpec `json:"outputs"`
	Plugin        *PluginInfo  `json:"plugin"`
	Raw           []byte       `json:"-"`
}

// ReadManifest reads and checks a plugin's manifest from its ELF file without loading it.
func ReadManifest(path string) (*Manifest, error) {
	raw, exports, err := readPluginFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, &UnsupportedError{Path: path, Reason: err.Error()}
	}
	for _, fn := range Functions {
		node, ok := exports[m.Plugin.SymbolPrefix+fn]
		if !ok {
			return nil, &UnsupportedError{Path: path, Reason: "it does not export " + m.Plugin.SymbolPrefix + fn}
		}
		if node != ABINode {
			return nil, &UnsupportedError{Path: path, Reason: fmt.Sprintf("%s%s is bound to version node %q, this host speaks %s", m.Plugin.SymbolPrefix, fn, node, ABINode)}
		}
	}
	return m, nil
}

// parseManifest decodes the manifest and refuses what this host does not understand.
func parseManifest(raw []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("the manifest cannot be read: %v", err)
	}
	m.Raw = raw
	switch {
	case m.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("manifest schema_version %d is not supported (this host reads %d)", m.SchemaVersion, SchemaVersion)
	case m.Plugin == nil:
		return nil, fmt.Errorf("the manifest has no \"plugin\" object")
	case m.Plugin.ABINode != ABINode:
		return nil, fmt.Errorf("plugin ABI node %q is not supported (this host speaks %s)", m.Plugin.ABINode, ABINode)
	case len(m.Plugin.ABIVersion) != 2 || m.Plugin.ABIVersion[0] != ABIMajor:
		return nil, fmt.Errorf("plugin ABI version %v is not supported (this host speaks %d.x)", m.Plugin.ABIVersion, ABIMajor)
	case !prefixPattern.MatchString(m.Plugin.SymbolPrefix):
		return nil, fmt.Errorf("symbol_prefix %q is not phot_<model>_v<M>_<m>_<p>_[<precision>_]", m.Plugin.SymbolPrefix)
	case len(m.Inputs) == 0 || len(m.Outputs) == 0:
		return nil, fmt.Errorf("the manifest lists no inputs or no outputs")
	}
	for _, group := range [][]TensorSpec{m.Inputs, m.Outputs} {
		for _, s := range group {
			if s.Name == "" || s.DType.Size() == 0 || len(s.Shape) > MaxRank {
				return nil, fmt.Errorf("tensor %q: unsupported name, dtype or rank", s.Name)
			}
		}
	}
	return &m, nil
}

func (m *Manifest) String() string { return m.Name + " " + m.Version }
