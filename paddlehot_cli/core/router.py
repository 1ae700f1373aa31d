"""Map a request (model, optional version selector) to one loaded version.

The selector is what the URL carries in `/versions/{v}`: an exact SemVer (`1.2.0`), a label
(`stable`, `canary`, ...: from REPO/NAME/labels.json or the admin API), or a SemVer range
(`^1.2`, `~1.2.3`, `>=1.2,<2`, `1.*`). Without one, traffic goes to the `canary` label with
probability `canary_weight`%, else to the `stable` label, else to the newest version, skipping
versions whose breaker is open (that is the automatic rollback). Once per cooldown a breaker
admits one trial: unpinned traffic then sends one request to the newest such version, and its
success undoes the rollback.

Precision variants (docs/variants.md) are loaded under keys such as `1.2.0-int8`. Only an exact
key, a label naming one, or a precision asked for (`SELECTOR-PRECISION`, e.g. `stable-int8`,
`^1.2-int8`, or `-int8` for the default choice; the request parameter `precision` is spelt so by
serve) reaches a variant: ranges, labels and "newest" choose among fp32 versions, and the
variant of the version they choose is served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from paddlehot_cli.core.variants import FP32, PRECISIONS, base_version, is_key, variant_key
from paddlehot_cli.core.versions import is_semver

_LABEL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")  # always fullmatch: "$" accepts "\n"
_PARTIAL_RE = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_PRECISION_SUFFIX_RE = re.compile(r"(.*)-(fp32|bf16|int8)")  # fullmatch


class RouteError(LookupError):
    status = 404

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotLoaded(RouteError):
    status = 404


class Unavailable(RouteError):
    status = 503


def is_label(text: str) -> bool:
    return bool(_LABEL_RE.fullmatch(text))


def parse_range(text: str) -> SpecifierSet:
    """npm/cargo-style ranges translated to PEP 440 specifiers: ^1.2 -> >=1.2.0,<2.0.0."""
    text = text.strip()
    if text.startswith(("^", "~")) and not text.startswith("~="):
        m = _PARTIAL_RE.fullmatch(text[1:])
        if not m:
            raise ValueError(f"invalid version range '{text}'")
        major, minor, patch = (int(g) if g is not None else None for g in m.groups())
        low = f"{major}.{minor or 0}.{patch or 0}"
        if text[0] == "^":
            if major > 0 or minor is None:
                high = f"{major + 1}.0.0"
            elif minor > 0 or patch is None:
                high = f"0.{minor + 1}.0"
            else:
                high = f"0.0.{patch + 1}"
        else:
            high = f"{major}.{minor + 1}.0" if minor is not None else f"{major + 1}.0.0"
        return SpecifierSet(f">={low},<{high}")
    if text.endswith(".*") and _PARTIAL_RE.fullmatch(text[:-2]):
        return SpecifierSet(f"=={text}")
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        raise ValueError(f"invalid version selector '{text}'") from None
    if not len(spec):
        raise ValueError(f"invalid version selector '{text}'")
    return spec


@dataclass(frozen=True)
class Labels:
    labels: Mapping[str, str] = field(default_factory=dict)  # label -> version
    canary_weight: float = 0.0  # percent of unpinned traffic to the `canary` label

    @staticmethod
    def from_json(data: object, where: str = "labels") -> Labels:
        """Accepts {"labels": {...}, "canary_weight": 10} or a flat {"stable": "1.2.0", ...}."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: must be a JSON object")
        weight = data.get("canary_weight", 0)
        labels = data.get("labels", {k: v for k, v in data.items() if k != "canary_weight"})
        if not isinstance(labels, dict):
            raise ValueError(f"{where}: 'labels' must be an object")
        for k, v in labels.items():
            if not isinstance(k, str) or not is_label(k):
                raise ValueError(f"{where}: invalid label name {k!r}")
            if not isinstance(v, str) or not is_key(v):
                raise ValueError(f"{where}: label '{k}' must name a SemVer version (or a "
                                 f"variant such as 1.2.0-int8), got {v!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 100:
            raise ValueError(f"{where}: canary_weight must be a number from 0 to 100")
        return Labels(dict(labels), float(weight))

    def to_json(self) -> dict:
        return {"labels": dict(self.labels), "canary_weight": self.canary_weight}


def with_precision(selector: str | None, precision: str | None) -> str | None:
    """The selector a request's `precision` parameter makes of its version selector."""
    if precision is None:
        return selector
    if precision not in PRECISIONS:
        raise NotLoaded(f"unknown precision '{precision}' (one of {', '.join(PRECISIONS)})")
    return f"{selector or ''}-{precision}"


def split_precision(selector: str | None, labels: Labels) -> tuple[str | None, str]:
    """`stable-int8` -> ("stable", "int8"); an exact key or label is never split."""
    if not selector or "-" not in selector or is_key(selector) or selector in labels.labels:
        return selector, FP32
    m = _PRECISION_SUFFIX_RE.fullmatch(selector)
    if m is None:
        return selector, FP32
    return (m[1] or None), m[2]


def select(
    versions: list[str],
    selector: str | None,
    labels: Labels,
    allow: Callable[[str], bool],
    healthy: Callable[[str], bool],
    rnd: float,
    model: str = "model",
) -> str:
    """Pick a version (or variant key) among `versions` (loaded, sorted newest first).

    `healthy(v)` is a side-effect-free check used to rank candidates (breaker closed);
    `allow(v)` is asked once for the chosen version (it may consume a half-open trial).
    """
    if not versions:
        raise Unavailable(f"model '{model}' has no version loaded")
    selector, precision = split_precision(selector, labels)
    if precision == FP32:
        return _select(versions, selector, labels, allow, healthy, rnd, model)
    have = [v for v in versions if is_semver(v) and variant_key(v, precision) in versions]
    if not have:
        raise NotLoaded(f"model '{model}' has no {precision} variant loaded")

    def key(v: str) -> str:
        return variant_key(base_version(v), precision)

    chosen = _select(have, selector, labels, lambda v: allow(key(v)),
                     lambda v: healthy(key(v)), rnd, model)
    return key(chosen)


def _select(versions: list[str], selector: str | None, labels: Labels,
            allow: Callable[[str], bool], healthy: Callable[[str], bool], rnd: float,
            model: str) -> str:
    # ranges and "newest": fp32 only ('-' is in variant keys alone, and cheaper than a regex)
    ordered = [v for v in versions if "-" not in v] if any("-" in v for v in versions) \
        else versions
    if selector:
        if is_semver(selector) or ("-" in selector and is_key(selector)):
            if selector not in versions:
                raise NotLoaded(
                    f"version '{selector}' of model '{model}' is not loaded "
                    f"(loaded: {', '.join(versions)})"
                )
            if not allow(selector):
                raise Unavailable(f"version '{selector}' of model '{model}' is unavailable (breaker open)")
            return selector
        if is_label(selector):
            target = labels.labels.get(selector)
            if target is None:
                raise NotLoaded(f"model '{model}' has no label '{selector}'")
            if target not in versions:
                raise NotLoaded(f"label '{selector}' of model '{model}' names {target}, which is not loaded")
            if not allow(target):
                raise Unavailable(f"version '{target}' ('{selector}') of model '{model}' is unavailable (breaker open)")
            return target
        try:
            spec = parse_range(selector)
        except ValueError as exc:
            raise NotLoaded(str(exc)) from None
        matching = [v for v in ordered if Version(v) in spec]
        if not matching:
            raise NotLoaded(f"no loaded version of model '{model}' matches '{selector}'")
        return _first_allowed(matching, allow, healthy, model)
    canary = labels.labels.get("canary")
    if canary in versions and labels.canary_weight > 0 and rnd * 100 < labels.canary_weight:
        if healthy(canary) and allow(canary):
            return canary
    stable = labels.labels.get("stable")
    if stable in versions and healthy(stable) and allow(stable):
        return stable
    if not ordered:
        raise Unavailable(f"model '{model}' has no fp32 version loaded (ask for a variant, "
                          "e.g. VERSION-int8)")
    return _first_allowed(ordered, allow, healthy, model)


def _first_allowed(ordered: list[str], allow: Callable[[str], bool],
                   healthy: Callable[[str], bool], model: str) -> str:
    """Newest first. A closed breaker always allows; an open one allows one trial per cooldown,
    so the newest version whose breaker opened is retried and traffic returns when it heals."""
    for v in ordered:
        if allow(v):
            return v
    raise Unavailable(f"every loaded version of model '{model}' is unavailable (breakers open)")
