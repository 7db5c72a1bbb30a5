"""The weights of the evaluation's composite score: the packaged file or a bureau's own, checked
(known objects and indicators, each object's weights summing to 100 in every county) and kept in
memory until the file changes."""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citygrid_data import data_file

from layers.errors import ConfigError

PACKAGED = "evaluation_weights.toml"
TOTAL = 100.0
# what each evaluated object may weigh: its rates where higher is better, and the complements
# `rework` (1 − rework_rate), `missed_report` (1 − missed_report_rate) and `supervision`
INDICATORS: dict[str, tuple[str, ...]] = {
    "region": ("registration_rate", "closed_rate", "on_time_closed_rate"),
    "department": ("handled_rate", "on_time_handled_rate", "rework", "supervision"),
    "inspector": (
        "valid_report_rate",
        "missed_report",
        "on_time_verify_rate",
        "on_time_check_rate",
    ),
    "dispatcher": ("on_time_dispatch_rate", "accurate_dispatch_rate"),
    "shift_leader": ("on_time_register_rate", "accurate_register_rate", "on_time_close_rate"),
    "operator": ("valid_report_rate",),
}
OBJECT_LABELS = {
    "region": "区域",
    "department": "处置部门",
    "inspector": "监督员",
    "dispatcher": "派遣员",
    "shift_leader": "值班长",
    "operator": "受理员",
}
Weights = dict[str, Any]


def _refuse(where: str, en: str, zh: str) -> ConfigError:
    return ConfigError(
        f"Evaluation weights file {where}: {en}",
        f"考核权重文件 {where}：{zh}",
        code="evaluation_weights_invalid",
    )


def _section(where: str, kind: str, values: Any, label: str) -> dict[str, float]:
    if kind not in INDICATORS:
        raise _refuse(
            where,
            f"unknown object [{label}]; objects are {', '.join(INDICATORS)}.",
            f"未知的考核对象 [{label}]，可选：{'、'.join(INDICATORS)}。",
        )
    if not isinstance(values, dict):
        raise _refuse(where, f"[{label}] must be a table.", f"[{label}] 必须是一节权重。")
    unknown = sorted(set(values) - set(INDICATORS[kind]))
    if unknown:
        raise _refuse(
            where,
            f"[{label}] names unknown indicator(s) {', '.join(unknown)}; "
            f"{kind} weighs {', '.join(INDICATORS[kind])}.",
            f"[{label}] 含未知指标 {'、'.join(unknown)}；{OBJECT_LABELS[kind]}可用指标："
            f"{'、'.join(INDICATORS[kind])}。",
        )
    bad = [n for n, v in values.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad or any(v < 0 for n, v in values.items() if n not in bad):
        raise _refuse(
            where,
            f"[{label}] weights must be numbers of 0 or more.",
            f"[{label}] 的权重必须是不小于 0 的数。",
        )
    return {n: float(v) for n, v in values.items()}


def _sums(where: str, kind: str, weights: dict[str, float], label: str) -> None:
    total = sum(weights.values())
    if abs(total - TOTAL) > 1e-6:
        raise _refuse(
            where,
            f"the weights of {label} sum to {total:g}, not 100.",
            f"{label} 的权重合计为 {total:g}，应为 100。",
        )


def parse(raw: str, where: str) -> Weights:
    """The weights of a file's text, checked; ConfigError naming what is wrong."""
    try:
        found = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise _refuse(where, f"not TOML ({exc}).", f"不是有效的 TOML 格式（{exc}）。") from None
    stray = sorted(set(found) - {"default", "county"})
    if stray or not isinstance(found.get("default"), dict):
        raise _refuse(
            where,
            "it holds [default.<object>] tables and [county.<adcode>.<object>] overrides only.",
            "只能包含 [default.<对象>] 和 [county.<县级代码>.<对象>] 两类节。",
        )
    default = {k: _section(where, k, v, f"default.{k}") for k, v in found["default"].items()}
    missing = [k for k in INDICATORS if k not in default]
    if missing:
        raise _refuse(
            where,
            f"no default weights for {', '.join(missing)}.",
            f"缺少默认权重：{'、'.join(OBJECT_LABELS[k] for k in missing)}。",
        )
    for kind, weights in default.items():
        _sums(where, kind, weights, f"[default.{kind}]")
    counties: dict[str, dict[str, dict[str, float]]] = {}
    for adcode, objects in (found.get("county") or {}).items():
        if not isinstance(objects, dict):
            raise _refuse(
                where, f"[county.{adcode}] must be a table.", f"[county.{adcode}] 必须是一节。"
            )
        counties[adcode] = {}
        for kind, values in objects.items():
            label = f"county.{adcode}.{kind}"
            own = _section(where, kind, values, label)
            _sums(where, kind, default[kind] | own, f"[{label}]（与默认合并后）")
            counties[adcode][kind] = own
    return {"default": default, "county": counties}


def load(path: Path | None = None) -> Weights:
    """The weights of a bureau's file, or of the packaged one when `path` is None."""
    if path is None:
        return parse(data_file(PACKAGED).read_text(encoding="utf-8"), PACKAGED)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(
            str(path), f"cannot be read ({exc.__class__.__name__}).", "无法读取。"
        ) from None
    return parse(raw, str(path))


def weights_for(weights: Weights, adcode: str, kind: str) -> dict[str, float]:
    """The weights of one object (region, department, or a post) in one county."""
    own = weights.get("county", {}).get(adcode, {}).get(kind, {})
    return dict(weights["default"].get(kind, {})) | own


@dataclass
class _Loaded:
    stamp: tuple[int, int] | None
    weights: Weights


class WeightsCache:
    """The weights of one file in memory, read again when its modification time or size moves."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return (-1, -1)
        return (stat.st_mtime_ns, stat.st_size)

    def get(self) -> Weights:
        """The file's weights, checked; ConfigError when the file is missing or invalid."""
        stamp = self._stamp()
        with self._lock:
            loaded = self._loaded
        if loaded is not None and loaded.stamp == stamp:
            return loaded.weights
        weights = load(self.path)
        with self._lock:
            self._loaded = _Loaded(stamp, weights)
        return weights
