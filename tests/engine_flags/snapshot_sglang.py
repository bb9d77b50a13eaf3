"""Write sglang-<version>.json: every long option of SGLang's own `launch_server` parser, whether it takes a value,
and its choices. SGLang's wheel cannot be installed where these tests run (its requirements pin CUDA 13 packages:
cuda-python, flashinfer_python[cu13], nvidia-cutlass-dsl[cu13], ...), but its parser needs none of them, so the
snapshot was taken once with

    pip download sglang==0.5.23 --no-deps -d /tmp/sg
    pip install --no-deps --target /tmp/sgt /tmp/sg/sglang-0.5.23-*.whl && pip install --target /tmp/sgt orjson
    PYTHONPATH=/tmp/sgt .venv/bin/python tests/engine_flags/snapshot_sglang.py

Re-run it when the spark profile moves to a newer SGLang image.
"""

from __future__ import annotations

import argparse
import datetime
import json
from importlib.metadata import version
from pathlib import Path


def main() -> None:
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    flags = {}
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                flags[option] = {"takes_value": action.nargs != 0,
                                 **({"choices": sorted(map(str, action.choices))} if action.choices else {})}
    release = version("sglang")
    snapshot = {"_source": f"sglang {release}: ServerArgs.add_cli_args (sglang/srt/server_args.py), the parser of "
                           f"`python -m sglang.launch_server`; snapshot taken {datetime.date.today()}",
                "flags": dict(sorted(flags.items()))}
    out = Path(__file__).with_name(f"sglang-{release}.json")
    out.write_text(json.dumps(snapshot, indent=1) + "\n")
    print(f"{len(flags)} options -> {out}")


if __name__ == "__main__":
    main()
