"""Hardware spec table for rooflines: memory bandwidth, memory size and dense tensor peaks.

Every figure is the vendor's published number, dense (NVIDIA's datasheets print the 2:4-sparsity figure
and footnote "specifications 1/2 lower without sparsity"; we store the dense half). A figure we had to
derive rather than read is listed in the entry's ``derived`` tuple and says so wherever it is shown.
The comment above each entry names the document the numbers come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ProfileError


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


_SPECS = (
    # NVIDIA DGX Spark product page and DGX Spark User Guide, "Hardware overview": GB10, 128 GB LPDDR5x
    # unified memory, 273 GB/s, "up to 1 PFLOP FP4 AI performance" (with sparsity). NVIDIA publishes no
    # BF16/FP8 peak for GB10: dense NVFP4 = 1000 / 2; FP8 and BF16 follow Blackwell's halving per
    # precision step (derived, marked as such).
    HardwareSpec("dgx-spark", "NVIDIA DGX Spark (GB10)", 128, 273,
                 {"nvfp4": 500, "fp8": 250, "bfloat16": 125}, unified_memory=True,
                 derived=("nvfp4", "fp8", "bfloat16"),
                 note="NVIDIA publishes only '1 PFLOP FP4 with sparsity'; the dense peaks are derived from it"),
    # NVIDIA H100 Tensor Core GPU datasheet (SXM5 column): 80 GB HBM3, 3.35 TB/s, FP8 3,958 / BF16 1,979
    # TFLOPS with sparsity.
    HardwareSpec("h100-sxm", "NVIDIA H100 SXM 80GB", 80, 3350, {"fp8": 1979, "bfloat16": 989}),
    # Same datasheet, H100 PCIe column: 80 GB HBM2e, 2.0 TB/s, FP8 3,026 / BF16 1,513 with sparsity.
    HardwareSpec("h100-pcie", "NVIDIA H100 PCIe 80GB", 80, 2000, {"fp8": 1513, "bfloat16": 756}),
    # NVIDIA H200 Tensor Core GPU datasheet (SXM column): 141 GB HBM3e, 4.8 TB/s, FP8 3,958 / BF16 1,979
    # with sparsity (same tensor cores as H100 SXM).
    HardwareSpec("h200", "NVIDIA H200 SXM 141GB", 141, 4800, {"fp8": 1979, "bfloat16": 989}),
    # NVIDIA A100 Tensor Core GPU datasheet (80GB SXM): 2,039 GB/s, BF16 312 dense (624 sparse); no FP8.
    HardwareSpec("a100-sxm", "NVIDIA A100 SXM 80GB", 80, 2039, {"bfloat16": 312}),
    # NVIDIA L40S datasheet: 48 GB GDDR6, 864 GB/s, FP8 1,466 / BF16 733 TFLOPS with sparsity.
    HardwareSpec("l40s", "NVIDIA L40S", 48, 864, {"fp8": 733, "bfloat16": 362}),
    # NVIDIA RTX 6000 Ada Generation datasheet: 48 GB GDDR6, 960 GB/s, 1,457 FP8 TFLOPS with sparsity;
    # BF16 is half the FP8 rate on Ada.
    HardwareSpec("rtx-6000-ada", "NVIDIA RTX 6000 Ada", 48, 960, {"fp8": 728, "bfloat16": 364}),
    # NVIDIA RTX A6000 datasheet: 48 GB GDDR6, 768 GB/s, 309.7 tensor TFLOPS (BF16/FP16) with sparsity;
    # Ampere has no FP8.
    HardwareSpec("rtx-a6000", "NVIDIA RTX A6000", 48, 768, {"bfloat16": 154.8}),
    # NVIDIA RTX Blackwell GPU architecture whitepaper, RTX 5090 column: 32 GB GDDR7, 1,792 GB/s,
    # 3,352 AI TOPS = FP4 with sparsity (dense 1,676); FP8 and BF16 with FP32 accumulate 419 and 209.5
    # dense (GeForce runs FP32-accumulate tensor math at half the FP16-accumulate rate).
    HardwareSpec("rtx-5090", "NVIDIA GeForce RTX 5090", 32, 1792,
                 {"nvfp4": 1676, "fp8": 419, "bfloat16": 209.5},
                 note="GeForce peaks with FP32 accumulate (what BF16 inference kernels use)"),
    # NVIDIA Ada Lovelace architecture whitepaper, RTX 4090 column: 24 GB GDDR6X, 1,008 GB/s; FP8 330.3
    # and BF16 165.2 dense with FP32 accumulate.
    HardwareSpec("rtx-4090", "NVIDIA GeForce RTX 4090", 24, 1008, {"fp8": 330, "bfloat16": 165},
                 note="GeForce peaks with FP32 accumulate"),
)

HARDWARE: dict[str, HardwareSpec] = {spec.key: spec for spec in _SPECS}


def hardware_spec(key: str) -> HardwareSpec:
    try:
        return HARDWARE[key]
    except KeyError:
        raise ProfileError(f"Unknown hardware {key!r}; known: {', '.join(HARDWARE)}") from None


def match_gpu_name(name: str) -> HardwareSpec | None:
    """Best table entry for a CUDA device name such as 'NVIDIA H100 80GB HBM3' or 'NVIDIA GB10'."""
    lowered = name.lower()
    rules = (("gb10", "dgx-spark"), ("h200", "h200"), ("h100 pcie", "h100-pcie"), ("h100", "h100-sxm"),
             ("a100", "a100-sxm"), ("l40s", "l40s"), ("rtx 6000 ada", "rtx-6000-ada"), ("a6000", "rtx-a6000"),
             ("5090", "rtx-5090"), ("4090", "rtx-4090"))
    for needle, key in rules:
        if needle in lowered:
            return HARDWARE[key]
    return None
