"""``spark-labs serve`` / ``python -m spark_labs.serve``: run the server with uvicorn."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-labs serve", description=__doc__)
    parser.add_argument("--backend", choices=["transformers"], default="transformers")
    parser.add_argument("--model", help="HF model directory or id (default: the profile's model)")
    parser.add_argument("--served-model-name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--max-concurrency", type=int, default=1,
                        help="generations running at once; the rest queue (1 suits a CPU)")
    args = parser.parse_args(argv)

    import uvicorn

    from ..profiles import get_profile
    from .app import create_app
    from .backends import TransformersBackend

    model = get_profile().model_for(None)
    path = args.model or model.hf_path()
    backend = TransformersBackend(path, args.served_model_name or model.served_name, args.max_concurrency)
    uvicorn.run(create_app(backend), host=args.host, port=args.port, log_level="warning")
    return 0
