package phot

import (
	"strings"
	"testing"
)

// parseManifest alone (no plugin needed): what this host refuses, and why it says so.
func TestParseManifestRefusesWhatItDoesNotSpeak(t *testing.T) {
	good := `{"schema_version": 1, "name": "mlp", "version": "1.0.0",
	  "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 16]}],
	  "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 4]}],
	  "plugin": {"abi_node": "PADDLEHOT_1.0", "abi_version": [1, 0],
	             "symbol_prefix": "phot_mlp_v1_0_0_"}}`
	m, err := parseManifest([]byte(good))
	if err != nil || m.Inputs[0].DType != Float32 || m.Plugin.SymbolPrefix != "phot_mlp_v1_0_0_" {
		t.Fatalf("good manifest: %v", err)
	}
	variant := strings.Replace(good, `phot_mlp_v1_0_0_`, `phot_mlp_v1_0_0_int8_`, 1)
	if _, err := parseManifest([]byte(variant)); err != nil {
		t.Fatalf("an int8 variant's prefix: %v", err)
	}
	cases := map[string][2]string{
		"not JSON":      {"{", ""},
		"future schema": {`"schema_version": 1`, `"schema_version": 2`},
		"no plugin":     {`"plugin"`, `"plugin_"`},
		"future node":   {`PADDLEHOT_1.0`, `PADDLEHOT_2.0`},
		"future major":  {`[1, 0]`, `[2, 0]`},
		"bad prefix":    {`phot_mlp_v1_0_0_`, `mlp_`},
		"bad precision": {`phot_mlp_v1_0_0_`, `phot_mlp_v1_0_0_fp64_`},
		"bad dtype":     {`"dtype": "float32", "shape": [-1, 16]`, `"dtype": "complex64", "shape": [-1, 16]`},
		"rank 9":        {`[-1, 16]`, `[1, 1, 1, 1, 1, 1, 1, 1, 1]`},
	}
	for name, c := range cases {
		raw := c[0]
		if name != "not JSON" {
			raw = strings.Replace(good, c[0], c[1], 1)
		}
		if _, err := parseManifest([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
