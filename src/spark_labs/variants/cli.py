"""``spark-labs build``: build variants ahead of time and measure what each bought (lab 03).

    spark-labs build quantize                       # F16, Q8_0, Q4_K_M of the embedded model, served and timed
    spark-labs build quantize --variants Q8_0 --out ~/variants --no-serve
    spark-labs build weight-only                    # transformers bf16 vs bitsandbytes NF4, loaded and timed
    spark-labs build compile                        # the profile's model: static-cache decode, eager vs compiled
"""

from __future__ import annotations

import argparse

from ..cli_types import TOKENS, ArgumentParser, check_model_env, output_dir
from ..paths import cache_dir
from .gguf_variants import variant_names
from .weight_only import WEIGHT_ONLY_VARIANTS


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="spark-labs build", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    quantize = sub.add_parser("quantize", help="GGUF variants of the embedded model: size, speed, perplexity")
    quantize.add_argument("--variants", nargs="+", choices=variant_names(), default=variant_names())
    quantize.add_argument("--out", type=output_dir, default=None, help="directory for the GGUF files "
                          "(default: the spark-labs cache, variants/)")
    quantize.add_argument("--no-serve", action="store_true", help="build and score only; do not start llama.cpp")
    weight_only = sub.add_parser("weight-only", help="the embedded model in transformers, bf16 and bitsandbytes "
                                 "NF4: load time, weights in memory, speed, perplexity")
    weight_only.add_argument("--variants", nargs="+", choices=list(WEIGHT_ONLY_VARIANTS),
                             default=list(WEIGHT_ONLY_VARIANTS))
    compile_ = sub.add_parser("compile", help="static-cache decode of the profile's model, eager vs compiled")
    compile_.add_argument("--prompt-tokens", type=TOKENS, default=64, help="prompt length (default 64)")
    compile_.add_argument("--new-tokens", type=TOKENS, default=32, help="tokens decoded (default 32)")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "compile":  # the others build from the embedded model whatever the profile
        check_model_env(parser, lab="03")
    if args.command == "quantize":
        return _quantize(args)
    if args.command == "weight-only":
        return _weight_only(args)
    return _compile(args)


def _quantize(args) -> int:
    import pandas as pd

    from ..models.embedded import embedded_gguf_path, prepare_embedded_model
    from .gguf_variants import build_variants
    from .quality import perplexity

    out = args.out or cache_dir("variants")
    built = build_variants(embedded_gguf_path(), out, args.variants)
    if args.no_serve:
        table = pd.DataFrame([{"variant": v.name, "build_s": v.build_s, "size_mb": v.size_bytes / 1e6,
                               "perplexity": perplexity(v.path)} for v in built]).set_index("variant")
    else:
        from transformers import AutoTokenizer

        from .measure import variant_table

        table = variant_table(built, AutoTokenizer.from_pretrained(prepare_embedded_model()))
    print(table.round(2).to_string())
    print(f"files: {out}")
    return 0


def _weight_only(args) -> int:
    from transformers import AutoTokenizer

    from ..models.embedded import prepare_embedded_model
    from .measure import weight_only_table

    path = prepare_embedded_model()
    print(weight_only_table(path, AutoTokenizer.from_pretrained(path), args.variants).round(2).to_string())
    return 0


def _compile(args) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from ..models.embedded import prepare_embedded_model
    from ..profiles import get_profile
    from .measure import decoder_table

    profile = get_profile()
    cuda = torch.cuda.is_available()
    path = prepare_embedded_model() if profile.name == "tiny" else profile.model_for("03").hf_id
    # CPUs without bf16 matrix units run bf16 far slower than float32; GPUs run bf16 natively.
    dtype = torch.bfloat16 if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to("cuda" if cuda else "cpu").eval()
    print(decoder_table(model, args.prompt_tokens, args.new_tokens).round(2).to_string())
    return 0
