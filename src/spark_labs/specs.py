"""Hardware spec table for rooflines: memory bandwidth, memory size and dense tensor peaks.

Figures are vendors' published numbers (dense, i.e. without 2:4 sparsity) unless marked *derived*.
Sources: NVIDIA DGX Spark product page and GB10 datasheet (273 GB/s LPDDR5x, 128 GB, "1 PFLOP FP4"
with sparsity); NVIDIA H100 / H200 datasheets (SXM and PCIe); RTX 4090 / 5090 / RTX 6000 Ada / L40S
product specifications; A100 datasheet. GB10's BF16 and FP8 peaks are not published: we derive them
from the FP4 figure with Blackwell's 2× step per precision halving (FP4 sparse → dense ÷2 → FP8 ÷2 →
BF16 ÷2), and say so wherever they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ProfileError


@dataclass(frozen=True)
class HardwareSpec:
    key: str
    name: str
    memory_gb: float
    bandwidth_gbs: float  # GB/s (10^9 bytes per second)
    peak_tflops: dict[str, float] = field(default_factory=dict)  # dense, by dtype
    unified_memory: bool = False
    derived: tuple[str, ...] = ()  # dtypes whose peak is derived rather than published
    note: str = ""

    @property
    def bandwidth_bytes_s(self) -> float:
        return self.bandwidth_gbs * 1e9

    def peak_flops(self, dtype: str) -> float:
        key = {"bf16": "bfloat16", "fp16": "bfloat16", "float16": "bfloat16"}.get(dtype, dtype)
        if key not in self.peak_tflops:
            raise ProfileError(f"No {dtype} peak recorded for {self.name}; known: {', '.join(self.peak_tflops)}")
        return self.peak_tflops[key] * 1e12


HARDWARE: dict[str, HardwareSpec] = {
    spec.key: spec
    for spec in (
        HardwareSpec("dgx-spark", "NVIDIA DGX Spark (GB10)", 128, 273,
                     {"nvfp4": 500, "fp8": 250, "bfloat16": 125}, unified_memory=True,
                     derived=("fp8", "bfloat16"),
                     note="1 PFLOP FP4 is NVIDIA's sparse figure; dense NVFP4 = 500"),
        HardwareSpec("h100-sxm", "NVIDIA H100 SXM 80GB", 80, 3350, {"fp8": 1979, "bfloat16": 989}),
        HardwareSpec("h100-pcie", "NVIDIA H100 PCIe 80GB", 80, 2000, {"fp8": 1513, "bfloat16": 756}),
        HardwareSpec("h200", "NVIDIA H200 SXM 141GB", 141, 4800, {"fp8": 1979, "bfloat16": 989}),
        HardwareSpec("a100-sxm", "NVIDIA A100 SXM 80GB", 80, 2039, {"bfloat16": 312}),
        HardwareSpec("l40s", "NVIDIA L40S", 48, 864, {"fp8": 733, "bfloat16": 362}),
        HardwareSpec("rtx-6000-ada", "NVIDIA RTX 6000 Ada", 48, 960, {"fp8": 728, "bfloat16": 364}),
        HardwareSpec("rtx-5090", "NVIDIA GeForce RTX 5090", 32, 1792,
                     {"nvfp4": 838, "fp8": 419, "bfloat16": 209.5},
                     note="GeForce peaks with FP32 accumulate (what BF16 training/inference kernels use)"),
        HardwareSpec("rtx-4090", "NVIDIA GeForce RTX 4090", 24, 1008, {"fp8": 330, "bfloat16": 165},
                     note="GeForce peaks with FP32 accumulate"),
    )
}


def hardware_spec(key: str) -> HardwareSpec:
    try:
        return HARDWARE[key]
    except KeyError:
        raise ProfileError(f"Unknown hardware {key!r}; known: {', '.join(HARDWARE)}") from None


def match_gpu_name(name: str) -> HardwareSpec | None:
    """Best table entry for a CUDA device name such as 'NVIDIA H100 80GB HBM3' or 'NVIDIA GB10'."""
    lowered = name.lower()
    rules = (("gb10", "dgx-spark"), ("h200", "h200"), ("h100 pcie", "h100-pcie"), ("h100", "h100-sxm"),
             ("a100", "a100-sxm"), ("l40s", "l40s"), ("rtx 6000 ada", "rtx-6000-ada"), ("5090", "rtx-5090"),
             ("4090", "rtx-4090"))
    for needle, key in rules:
        if needle in lowered:
            return HARDWARE[key]
    return None
