"""Package checks: files match the manifest (PH140); plugin.so agrees with the package (PH141)."""

from __future__ import annotations

from paddlehot_cli.abi.context import Context
from paddlehot_cli.abi.findings import Finding, failed, passed, skipped
from paddlehot_cli.core.manifest import verify_files
from paddlehot_cli.errors import PackageError


def check_package_files(ctx: Context) -> Finding:
    s = ctx.subject
    if s.package is None or s.package_dir is None:
        return skipped("PH140", "not a package")
    try:
        verify_files(s.package_dir, s.package)
    except PackageError as exc:
        return failed("PH140", exc.message)
    return passed("PH140", f"{len(s.package.files)} files match their sha256")


def check_plugin_matches_package(ctx: Context) -> Finding:
    s = ctx.subject
    if s.package is None:
        return skipped("PH141", "not a package")
    if s.plugin is None:
        return skipped("PH141", "no plugin.so (or it has no manifest)")
    problems = []
    for key in ("name", "version", "format", "inputs", "outputs", "files"):
        if getattr(s.plugin, key) != getattr(s.package, key):
            problems.append(f"'{key}' differs between plugin.so and paddlehot.json")
    if problems:
        return failed("PH141", problems[0], problems)
    return passed("PH141", "plugin.so was built from this package")


PACKAGE_CHECKS = (check_package_files, check_plugin_matches_package)
