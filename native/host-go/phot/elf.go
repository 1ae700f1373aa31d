package phot

import (
	"debug/elf"
	"errors"
	"fmt"
	"runtime"
)

// What a plugin file says about itself, read with debug/elf before anything is mapped.

const (
	manifestSection  = ".paddlehot.manifest"
	maxManifestBytes = 1 << 20
)

// goarchMachines maps GOARCH to the ELF machine a plugin must have to load in this process.
var goarchMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// readPluginFile returns the manifest bytes (without the trailing NUL) and the version node of
// every defined dynamic symbol, after checking the file is a 64-bit shared object for this CPU.
func readPluginFile(path string) ([]byte, map[string]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, &NotPluginError{Path: path, Reason: err.Error()}
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Type != elf.ET_DYN {
		return nil, nil, &NotPluginError{Path: path, Reason: fmt.Sprintf("not a 64-bit shared object (%v, %v)", f.Class, f.Type)}
	}
	if want, ok := goarchMachines[runtime.GOARCH]; ok && f.Machine != want {
		return nil, nil, &NotPluginError{Path: path, Reason: fmt.Sprintf("built for %v, this process is %v", f.Machine, want)}
	}
	raw, err := sectionBytes(f, manifestSection)
	if err != nil {
		return nil, nil, &NotPluginError{Path: path, Reason: err.Error()}
	}
	versions, err := exportVersions(f)
	if err != nil {
		return nil, nil, &NotPluginError{Path: path, Reason: err.Error()}
	}
	return raw, versions, nil
}

func sectionBytes(f *elf.File, name string) ([]byte, error) {
	s := f.Section(name)
	if s == nil {
		return nil, fmt.Errorf("it has no %s section", name)
	}
	if s.Size > maxManifestBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than %d", name, s.Size, maxManifestBytes)
	}
	raw, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", name, err)
	}
	for len(raw) > 0 && raw[len(raw)-1] == 0 {
		raw = raw[:len(raw)-1]
	}
	return raw, nil
}

// exportVersions maps each defined dynamic symbol to its version node ("" when unversioned).
// debug/elf (Go 1.19) resolves versions of imports only, so .gnu.version_d is read here.
func exportVersions(f *elf.File) (map[string]string, error) {
	syms, err := f.DynamicSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, fmt.Errorf("reading .dynsym: %v", err)
	}
	nodes, err := versionDefinitions(f)
	if err != nil {
		return nil, err
	}
	versym, err := sectionData(f, ".gnu.version")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for i, s := range syms {
		if s.Section == elf.SHN_UNDEF {
			continue
		}
		node := ""
		// .gnu.version has one entry per .dynsym entry, including the null symbol 0.
		if off := 2 * (i + 1); off+2 <= len(versym) {
			idx := f.ByteOrder.Uint16(versym[off:]) & 0x7fff
			node = nodes[idx]
		}
		out[s.Name] = node
	}
	return out, nil
}

// versionDefinitions reads .gnu.version_d: version index -> node name.
func versionDefinitions(f *elf.File) (map[uint16]string, error) {
	s := f.SectionByType(elf.SHT_GNU_VERDEF)
	nodes := make(map[uint16]string)
	if s == nil {
		return nodes, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .gnu.version_d: %v", err)
	}
	if int(s.Link) >= len(f.Sections) {
		return nil, errors.New(".gnu.version_d links to no string table")
	}
	strs, err := f.Sections[s.Link].Data()
	if err != nil {
		return nil, fmt.Errorf("reading .gnu.version_d strings: %v", err)
	}
	bo := f.ByteOrder
	// Elf64_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32,
	// vd_aux u32, vd_next u32; Elf64_Verdaux: vda_name u32, vda_next u32.
	for off, n := 0, 0; n < 4096; n++ {
		if off < 0 || off+20 > len(data) {
			return nil, errors.New(".gnu.version_d is truncated")
		}
		ndx, aux, next := bo.Uint16(data[off+4:]), bo.Uint32(data[off+12:]), bo.Uint32(data[off+16:])
		at := off + int(aux)
		if at < off || at+8 > len(data) {
			return nil, errors.New(".gnu.version_d is truncated")
		}
		nodes[ndx] = cString(strs, bo.Uint32(data[at:]))
		if next == 0 {
			return nodes, nil
		}
		off += int(next)
	}
	return nil, errors.New(".gnu.version_d has too many entries")
}

func sectionData(f *elf.File, name string) ([]byte, error) {
	s := f.Section(name)
	if s == nil {
		return nil, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", name, err)
	}
	return data, nil
}

func cString(strs []byte, off uint32) string {
	if int(off) >= len(strs) {
		return ""
	}
	end := int(off)
	for end < len(strs) && strs[end] != 0 {
		end++
	}
	return string(strs[off:end])
}
