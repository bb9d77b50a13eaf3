"""Can this model be loaded here, and if not, why and what to do — answered in seconds, before anything loads it.

Left to itself, transformers (and every engine built on it) finds out late: on a machine with no network it
retries the Hub for about a minute and then raises a raw ``OSError: We couldn't connect to
'https://huggingface.co'``, and a gated model without a token fails the same way after the engine has started.
:func:`locate_model` asks the three places a model can come from, in the order the loaders look, and stops at
the first that has it:

1. a local folder with its ``config.json`` (a learner's fine-tune, a copy made with ``hf download --local-dir``);
2. the Hugging Face cache (``HF_HUB_CACHE``, else ``$HF_HOME/hub``), with its config, weights and tokenizer;
3. the Hub (``HF_ENDPOINT``): a HEAD of ``config.json`` with a short timeout, skipped when ``HF_HUB_OFFLINE``
   is set. Its answer tells the causes apart: no answer (offline), gated (no token, or a token whose account
   has not been granted the licence), no such repository (a typo), a refused token.

Every failure is a :class:`~spark_labs.errors.ModelUnavailableError` whose message names the model, the cause
and the fix. The environment is read at each call, not at import (huggingface_hub's constants are fixed when
it is imported), so a notebook that sets ``HF_TOKEN`` after importing the library is heard.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..errors import ModelUnavailableError

HUB_TIMEOUT_S = 3.0  # a Hub that is up answers a HEAD in well under a second; the whole check stays under 5 s
_TRUE = {"1", "on", "yes", "true"}  # what huggingface_hub accepts as "set"


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "huggingface").expanduser()


def hub_cache() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or hf_home() / "hub"
                ).expanduser()


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hub_offline() -> bool:
    # transformers' own switch implies the Hub's, as transformers itself does.
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_token() -> str | None:
    """``HF_TOKEN``, else the token ``hf auth login`` saved (``HF_TOKEN_PATH``, else ``$HF_HOME/token``)."""
    if token := os.environ.get("HF_TOKEN", "").strip():
        return token
    saved = Path(os.environ.get("HF_TOKEN_PATH") or hf_home() / "token").expanduser()
    try:
        return saved.read_text().strip() or None
    except OSError:
        return None


def looks_like_folder(model: str) -> bool:
    """A path rather than an ``org/name`` id: it exists here, or it is written as a path."""
    return Path(model).expanduser().exists() or model.startswith(("/", ".", "~")) or model.count("/") > 1


def locate_model(model: str, timeout: float = HUB_TIMEOUT_S,
                 local_copy: str = "give a local folder with config.json instead") -> str:
    """Where ``model`` (a local folder or an HF id) will load from, in words; raises
    :class:`ModelUnavailableError` naming the cause and the fix when it cannot be loaded here. ``local_copy``:
    how the caller is pointed at a local folder instead (``SPARK_LABS_MODEL=…``, ``--model …``), the fix that
    works with no network."""
    if looks_like_folder(model):
        return _local_folder(model)
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError

    cache = hub_cache()
    try:
        config = try_to_load_from_cache(model, "config.json", cache_dir=cache)
    except HFValidationError:
        raise _unavailable(model, "it is neither a folder here nor a Hugging Face id (org/name)",
                           f"check the spelling, or {local_copy}") from None
    missing = _missing_files(Path(config).parent) if isinstance(config, str) else ["config.json"]
    if not missing:
        return f"the Hugging Face cache ({cache})"
    partly = f"only part of it is in the Hugging Face cache ({cache}: {', '.join(missing)} missing)" \
        if isinstance(config, str) else f"it is not in the Hugging Face cache ({cache})"
    download = (f"download it where there is network with `hf download {model}` (it lands in {cache}; copy that "
                f"folder here), or {local_copy}")
    if hub_offline():
        raise _unavailable(model, f"{partly} and HF_HUB_OFFLINE=1 forbids downloading it",
                           f"unset HF_HUB_OFFLINE if this machine has network; else {download}")
    return _ask_hub(model, partly, download, local_copy, timeout)


def _unavailable(model: str, cause: str, fix: str) -> ModelUnavailableError:
    return ModelUnavailableError(f"{model} cannot be loaded here: {cause}. To fix: {fix}.")


def _local_folder(model: str) -> str:
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise _unavailable(model, "there is no such folder", "give the path of a folder holding config.json and the "
                           "weights (what save_pretrained or `hf download --local-dir` writes)")
    if not (folder / "config.json").is_file():
        raise _unavailable(model, "the folder has no config.json", "give the folder save_pretrained or "
                           "`hf download --local-dir` wrote (config.json beside the *.safetensors)")
    return f"the local folder {folder}"


def _missing_files(snapshot: Path) -> list[str]:
    """What a cached snapshot still lacks before it loads offline: weight shards, the tokenizer. A config alone
    is cached by anything that only peeked at the model (AutoConfig, an interrupted download)."""
    missing = []
    index = next((snapshot / name for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json")
                  if (snapshot / name).is_file()), None)
    if index is not None:
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        missing += sorted(shard for shard in shards if not (snapshot / shard).is_file())
    elif not any(snapshot.glob("*.safetensors")) and not any(snapshot.glob("pytorch_model*.bin")):
        missing.append("the weights")
    if not any((snapshot / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        missing.append("the tokenizer")
    return missing


def _ask_hub(model: str, partly: str, download: str, local_copy: str, timeout: float) -> str:
    """One HEAD of the model's config.json on the Hub, read as: there (the loader downloads it), or why not."""
    import httpx

    endpoint, token = hub_endpoint(), hf_token()
    page = f"{endpoint}/{model}"
    answer: list[httpx.Response | str] = []

    def ask() -> None:
        try:
            with httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"} if token else {}) as hub:
                reply = hub.head(f"{page}/resolve/main/config.json")
                # The Hub redirects within itself (a renamed repo, its resolve cache): follow those; an absolute
                # redirect goes to its CDN and already carries the headers read below.
                for _ in range(3):
                    if not (reply.is_redirect and reply.headers.get("Location", "").startswith("/")):
                        break
                    reply = hub.head(reply.url.join(reply.headers["Location"]))
                answer.append(reply)
        except httpx.HTTPError as exc:
            answer.append(str(exc) or type(exc).__name__)

    # A DNS lookup does not honour httpx's timeout (a resolver that never answers holds it for 20 s and more);
    # a daemon thread bounds the wait and does not keep the process alive at exit.
    worker = threading.Thread(target=ask, name="spark-labs-hub-check", daemon=True)
    worker.start()
    worker.join(timeout + 1)
    reply = answer[0] if answer else f"no answer within {timeout + 1:g} s"
    if isinstance(reply, str):
        raise _unavailable(model, f"{partly} and the Hub at {endpoint} cannot be reached ({reply})",
                           f"connect this machine to the network, or {download}")
    # What only the Hub sends: the commit a file resolves to, or an error code saying why it does not.
    code, message = reply.headers.get("X-Error-Code", ""), reply.headers.get("X-Error-Message", "")
    if reply.status_code < 400 and "X-Repo-Commit" in reply.headers:
        return f"the Hugging Face Hub ({page}); the first load downloads it into {hub_cache()}"
    login = (f"export HF_TOKEN=hf_… (a read token from {endpoint}/settings/tokens) or run `hf auth login` "
             "(`huggingface-cli login` with older huggingface_hub)")
    if "invalid credentials" in message.lower() or "invalid username or password" in message.lower():
        raise _unavailable(model, f"the Hub at {endpoint} refused the Hugging Face token (invalid or expired)",
                           f"create a new read token and {login}")
    if code == "GatedRepo" and token is None:
        raise _unavailable(model, "it is a gated model and no Hugging Face token is set",
                           f"accept its licence on {page} while logged in, then {login}")
    if code == "GatedRepo":
        raise _unavailable(model, "it is a gated model and the account of this token has not been granted access "
                           "(licence not accepted, or the request still pending)",
                           f"accept the licence on {page} with that account and wait for the approval e-mail; or "
                           f"{local_copy}")
    if code == "RepoNotFound":
        from .catalog import nearest_id

        near = nearest_id(model)
        private = "" if token else " (or it is private and no token is set)"
        raise _unavailable(model, f"there is no such model on the Hub at {endpoint}{private}",
                           (f"did you mean {near}? " if near else "") + "ids are case-sensitive: copy the id from "
                           f"the model's page on {endpoint}, or {local_copy}")
    if code == "EntryNotFound":
        raise _unavailable(model, "the repository has no config.json (not a Transformers model: GGUF files only?)",
                           f"pick the repository with the safetensors weights, or {local_copy}")
    # A server error, or an answer without the Hub's headers: a proxy, firewall or captive portal answered in the
    # Hub's place (huggingface_hub reads it the same way).
    hub_said = code or reply.status_code >= 500
    who = f"the Hub at {endpoint}" if hub_said else f"{endpoint} (but not as the Hub: a proxy or captive portal?)"
    raise _unavailable(model, f"{partly} and {who} answered HTTP {reply.status_code}",
                       f"check the network (HTTPS_PROXY) or try again later, or {download}")
