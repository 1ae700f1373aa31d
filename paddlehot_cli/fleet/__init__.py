"""Fleet distribution: versions as OCI artifacts in a registry (push, pull, follow).

One OCI artifact per model version, tagged with its SemVer version; plugins for several CPU
architectures travel under one tag as an OCI image index. Pulls write a hidden directory, check
every blob digest and then the package checksums, and rename it into place, like a publish.
core never imports this package; serve uses it for `--follow`.
"""
