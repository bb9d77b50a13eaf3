"""``spark-labs serve`` / ``python -m spark_labs.serve``: run the gateway with uvicorn.

    spark-labs serve --backend proxy --upstream http://127.0.0.1:8000/v1 --upstream http://127.0.0.1:8002/v1
    spark-labs serve --backend transformers            # the profile's model, in-process

Every GatewaySettings field is also a flag (``--max-in-flight 32``, ``--api-key K`` ...); flags override the
``SPARK_LABS_GATEWAY_*`` environment, which overrides the defaults.
"""

from __future__ import annotations

import argparse
import typing

from pydantic import ValidationError

from ..cli_types import (
    ArgumentParser,
    check_model_arg,
    check_model_env,
    http_url,
    listen_problem,
    port,
    readable_file,
    whole,
)
from ..engines.registry import TRANSFORMERS
from .settings import GatewaySettings

# Flags whose name differs from the field: repeatable singulars read better on a command line.
_FLAG_NAMES = {"upstreams": "--upstream", "api_keys": "--api-key", "cors_origins": "--cors-origin",
               "public_paths": "--public-path", "trusted_proxies": "--trusted-proxy"}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="spark-labs serve", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=[TRANSFORMERS.name, "proxy"], default=None,
                        help=f"proxy when --upstream is given, else {TRANSFORMERS.name}")
    parser.add_argument("--model", help="transformers: HF model directory or id (default: the profile's model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port, default=TRANSFORMERS.default_port)
    parser.add_argument("--max-concurrency", type=whole(1, 256, "one process computes them together; a GPU batch "
                                                                "of 256 already fills its memory with KV cache"),
                        default=4,
                        help="transformers: slots of the batched decode step (generations decoded together, "
                             "one static KV cache row each); more requests wait for a free slot")
    parser.add_argument("--max-model-len", type=whole(16, 131072, "it sizes every slot's KV cache row"), default=None,
                        help="transformers: positions per slot (prompt + max_tokens); default: the model's "
                             "context, at most 4096")
    group = parser.add_argument_group("gateway settings (also SPARK_LABS_GATEWAY_<NAME> environment variables)")
    for name, field in GatewaySettings.model_fields.items():
        _add_setting_flag(group, name, field)
    return parser


def _add_setting_flag(group, name: str, field) -> None:
    flag = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
    help_text = field.description or ""
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is bool:
        group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
    elif typing.get_origin(annotation) is list:
        group.add_argument(flag, dest=name, action="append", default=None, help=help_text + " (repeatable)")
    else:
        kind = {int: int, float: float}.get(annotation, str)
        group.add_argument(flag, dest=name, type=kind, default=None, help=help_text)


def settings_from_args(args: argparse.Namespace) -> GatewaySettings:
    given = {name: getattr(args, name) for name in GatewaySettings.model_fields if getattr(args, name) is not None}
    return GatewaySettings(**given)


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def checked_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> GatewaySettings:
    """The settings from flags and environment, or a one-line usage error naming the flag (and its variable):
    a value out of range, an upstream that is not an http(s) URL, a keys file that cannot be read."""
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        env = GatewaySettings.model_config["env_prefix"] + name.upper()
        parser.error(f"{_flag(name)} {error.get('input')!s} (or {env}): {error['msg']}")
    for url in settings.upstreams:
        try:
            http_url(url)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--upstream: {exc}")
    if settings.api_keys_file is not None:
        try:
            readable_file(str(settings.api_keys_file))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--api-keys-file: {exc}; give a file with one key per line")
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = checked_settings(parser, args)
    backend_kind = args.backend or ("proxy" if settings.upstreams else TRANSFORMERS.name)
    if backend_kind == "proxy" and not settings.upstreams:
        parser.error("--backend proxy needs at least one --upstream URL (e.g. --upstream http://127.0.0.1:8000/v1) "
                     "or SPARK_LABS_GATEWAY_UPSTREAMS")
    if backend_kind != "proxy" and args.model:
        check_model_arg(parser, "--model", args.model)
    elif backend_kind != "proxy":
        check_model_env(parser)
    if problem := listen_problem(args.host, args.port):
        parser.error(f"--host {args.host} --port {args.port}: {problem}")

    from .app import create_app
    from .runner import serve_forever

    if backend_kind == "proxy":
        from .proxy import ProxyBackend

        backend = ProxyBackend(settings.upstreams, settings)
    else:
        from ..profiles import get_profile
        from .backends import TransformersBackend

        model = get_profile().model_for(None)
        backend = TransformersBackend(args.model or model.hf_path(), settings.served_model_name or model.served_name,
                                      args.max_concurrency, max_model_len=args.max_model_len)
    serve_forever(create_app(backend, settings), settings, args.host, args.port)
    return 0
