"""paddlehot's OCI media types, the role of each package file, and CPU architecture names."""

from __future__ import annotations

from paddlehot_cli.core.manifest import FORMATS, MANIFEST_NAME, VALIDATION_FILE

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"

ARTIFACT_TYPE = "application/vnd.paddlehot.package.v1"
# The config blob of every paddlehot artifact is the package's paddlehot.json itself: a puller
# knows what it got (and its checksums) before it downloads a single layer.
CONFIG = "application/vnd.paddlehot.package.manifest.v1+json"
MODEL = "application/vnd.paddlehot.model.v1"
PARAMS = "application/vnd.paddlehot.params.v1"
VALIDATION = "application/vnd.paddlehot.validation.v1+npz"
PLUGIN = "application/vnd.paddlehot.plugin.v1+elf"
# a detached signature (core/signatures.py): its title is its file name in VERSION/signatures/
SIGNATURE = "application/vnd.paddlehot.signature.v1+json"
OTHER = "application/vnd.paddlehot.file.v1"

TITLE = "org.opencontainers.image.title"  # the file name inside the version dir
CREATED = "org.opencontainers.image.created"  # when push wrote it (tag-push -> serve time)
VERSION = "org.opencontainers.image.version"
PLUGIN_FILE = "plugin.so"
PLUGIN_ARCH = "vnd.paddlehot.plugin.arch"  # the ELF machine of an index entry
MODEL_NAME = "vnd.paddlehot.model"  # the package name, beside VERSION
PRECISION = "vnd.paddlehot.precision"  # a variant's (bf16, int8); absent: fp32

# ELF machine (elf_facts) <-> OCI platform architecture
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
ELF_ARCH = {oci: elf for elf, oci in OCI_ARCH.items()}


def media_type(file_name: str, package_format: str) -> str:
    model, params = FORMATS[package_format]
    return {model: MODEL, params: PARAMS, VALIDATION_FILE: VALIDATION,
            MANIFEST_NAME: CONFIG, PLUGIN_FILE: PLUGIN}.get(file_name, OTHER)

