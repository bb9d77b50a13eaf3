r"""Device proof for lab 04's transformers speculative path (run on the `device` machine; see docs/device-proof.md).

    PYTHONPATH=<gguf wheel>:src python3 scripts/device_proof/device_proof_spec.py \
        --parts /tmp/spec04 --sha256 <gguf sha256>

Reassembles the embedded GGUF from the parts carried over (the file is larger than one call may carry),
checks its sha256, exports it to HF safetensors with the tiny profile's own code, loads it in bf16 on CUDA and
runs ``spark_labs.speculative.comparison.measure``: greedy baseline vs prompt lookup for k = 1, 2, 4, 8 on the three
workloads, with identical-output checks. Prints the table and writes $OUT/spec.json; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=Path, required=True, help="folder holding part.* of the GGUF, in order")
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()

    import torch

    from spark_labs.models.embedded import EMBEDDED_GGUF_NAME, export_gguf_to_hf
    from spark_labs.speculative.comparison import format_table, measure
    from spark_labs.speculative.runner import SpecModel

    gguf_dir = Path("/tmp/spec04_gguf")
    gguf_dir.mkdir(exist_ok=True)
    gguf = gguf_dir / EMBEDDED_GGUF_NAME
    gguf.write_bytes(b"".join(p.read_bytes() for p in sorted(args.parts.glob("part.*"))))
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    if digest != args.sha256:
        raise SystemExit(f"reassembled GGUF has sha256 {digest}, expected {args.sha256}: a part is missing")
    export = Path("/tmp/spec04_hf")
    started = time.perf_counter()
    export_gguf_to_hf(gguf, export)
    export_s = time.perf_counter() - started

    model = SpecModel(export, dtype="bfloat16", device="cuda")
    rows = measure(model, max_new_tokens=args.max_tokens)
    print(format_table(rows))
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "export_s": round(export_s, 1), "max_new_tokens": args.max_tokens, "rows": [asdict(r) for r in rows]}
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "spec.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
