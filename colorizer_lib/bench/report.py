"""Results: one ``Row`` per measurement, the ``Report`` written to JSON and CSV after every row, the
console table and the environment record (device, versions, date, command line).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..accel import cpu_has_native_bf16


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class Row:
    """One measurement. ``per_second`` is images (or photos) per second; ``ms`` the median time of one
    batch (model rows) or one photo (latency rows)."""

    kind: str
    model: str
    render_factor: int | None
    batch: int | None
    variant: str
    per_second: float | None = None
    ms: float | None = None
    peak_gb: float | None = None
    gflop_per_image: float | None = None
    tflops: float | None = None
    pct_of_matmul: float | None = None
    runs: int | None = None
    note: str = ""


@dataclass
class Report:
    """All rows of a run plus how they were obtained; written to JSON and CSV after every row."""

    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    json_path: Path | None = None
    csv_path: Path | None = None

    def add(self, row: Row, *, echo: bool = True) -> None:
        self.rows.append(row)
        if echo:
            print(format_row(row), flush=True)
        self.write()

    def write(self) -> None:
        if self.json_path is None:
            return
        self.json_path.write_text(json.dumps({"meta": self.meta, "rows": [asdict(r) for r in self.rows]}, indent=1))
        with open(self.csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(Row.__dataclass_fields__))
            writer.writeheader()
            for r in self.rows:
                writer.writerow(asdict(r))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_row(r: Row) -> str:
    return (f"{r.kind:<13} {r.model:<9} rf={_fmt(r.render_factor, '>3')} bs={_fmt(r.batch, '>3')} "
            f"{r.variant:<14} {_fmt(r.per_second, '>9.2f')}/s {_fmt(r.ms, '>10.1f')} ms "
            f"peak {_fmt(r.peak_gb, '>6.2f')} GB {_fmt(r.tflops, '>7.3g')} TFLOP/s "
            f"({_fmt(r.pct_of_matmul, '.0f')}%) {r.note}")


def format_table(rows: Sequence[Row]) -> str:
    header = ("kind          model     rf  batch variant        per second     ms/batch   peak GB  TFLOP/s  "
              "% of matmul  note")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.kind:<13} {r.model:<9} {_fmt(r.render_factor, '>3')} {_fmt(r.batch, '>5')} "
                     f"{r.variant:<14} {_fmt(r.per_second, '>10.2f')} {_fmt(r.ms, '>12.1f')} "
                     f"{_fmt(r.peak_gb, '>9.2f')} {_fmt(r.tflops, '>8.3g')} {_fmt(r.pct_of_matmul, '>12.0f')}  {r.note}")
    return "\n".join(lines)


def environment(device: torch.device) -> dict[str, Any]:
    """Device, library versions, date, command line and (on CPU) the load average."""
    meta: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
        meta["cuda"] = torch.version.cuda
        meta["cudnn"] = torch.backends.cudnn.version()
    else:
        meta["cpu"] = platform.processor() or platform.machine()
        meta["cpu_model"], meta["cpu_flags"] = _cpu_model_and_flags()
        meta["cpu_native_bf16"] = cpu_has_native_bf16()
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        meta["loadavg_start"] = list(os.getloadavg())
    return meta


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and its vector-extension flags (AVX, AMX) from ``/proc/cpuinfo`` (Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
