"""The launcher's container path (the spark profile runs engines in their playbook images) end to end, against a
**docker stand-in**: Docker cannot run on the course's CI machine, so a ``docker`` executable put first on PATH
records every call and, for ``docker run``, behaves like the container would from outside: it sees only the
host paths the command mounts (an unmounted local model folder is "not found", as in a real container),
serves the engine's ready probe and ``/v1/models`` on the published host port, and exits when the CLI is
signalled (``docker run`` forwards SIGTERM to the container). The engines themselves are tested for real in
the other integration tests; what this file proves is the plumbing between the launcher and ``docker``."""

from __future__ import annotations

import json
import os
import stat
import textwrap

import httpx
import pytest

from spark_labs.engines import launch
from spark_labs.errors import EngineStartError
from spark_labs.models.embedded import prepare_embedded_model

STAND_IN = textwrap.dedent('''\
    #!{python}
    """docker stand-in (tests/integration/test_launcher_containers.py): records the call; `run` serves from outside."""
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    args = sys.argv[1:]
    record = os.environ["DOCKER_STAND_IN_RECORD"]
    def note(entry):
        with open(record, "a") as out:
            out.write(json.dumps(entry) + "\\n")
    note(args)
    if args[:1] != ["run"]:
        sys.exit(0)
    if os.environ.get("DOCKER_STAND_IN_REFUSE"):
        print("docker: Error response from daemon: driver failed programming external connectivity on endpoint: "
              "Bind for 0.0.0.0:8000 failed: port is already allocated.", file=sys.stderr)
        sys.exit(125)
    flags_with_value = {{"--name", "-p", "-v", "-e", "--ulimit", "--gpus"}}
    i, mounts, published = 1, [], None
    while args[i].startswith("-"):
        if args[i] in flags_with_value:
            if args[i] == "-v":
                mounts.append(args[i + 1].split(":")[1])
            if args[i] == "-p":
                published = int(args[i + 1].split(":")[0])
            i += 2
        else:
            i += 1
    image, inside = args[i], args[i + 1:]
    for arg in inside:  # inside the container only mounted host paths exist
        if arg.startswith("/") and os.path.exists(arg) and not any(
                arg == m or arg.startswith(m.rstrip("/") + "/") for m in mounts):
            print(f"OSError: {{arg}} is not a local folder and is not a valid model identifier", file=sys.stderr)
            sys.exit(1)
    served = inside[inside.index("--served-model-name") + 1] if "--served-model-name" in inside else image

    class Engine(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({{"object": "list", "data": [{{"id": served, "object": "model"}}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", published), Engine)
    def stop(signum, frame):
        note({{"signal": signal.Signals(signum).name}})
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{{image}} serving on host port {{published}}", flush=True)
    server.serve_forever()
''')


@pytest.fixture()
def docker_stand_in(tmp_path, monkeypatch):
    """A ``docker`` stand-in first on PATH; returns the list of recorded calls (read on demand)."""
    import sys

    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "docker"
    script.write_text(STAND_IN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "docker-calls.jsonl"
    record.touch()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_STAND_IN_RECORD", str(record))
    return lambda: [json.loads(line) for line in record.read_text().splitlines()]


def test_a_local_model_folder_is_mounted_so_the_container_finds_it_stand_in(docker_stand_in):
    model = str(prepare_embedded_model())  # SPARK_LABS_MODEL=<local folder>, the fix the model errors give
    engine = launch("vllm", model, port="auto", docker=True, profile="spark", timeout=60, progress=False)
    try:
        run = docker_stand_in()[0]
        assert run == engine.command[1:] and run[:2] == ["run", "--rm"]
        assert f"{model}:{model}:ro" in run and "--gpus" in run  # mounted read-only; the playbook's GPU flags
        served = httpx.get(engine.base_url + "/models", timeout=5).json()["data"][0]["id"]
        assert served == model
    finally:
        engine.stop()
    assert {"signal": "SIGTERM"} in docker_stand_in()  # the CLI got the stop (and forwards it to the container)
    assert not engine.is_running()


def test_without_the_mount_the_container_would_not_see_the_model_stand_in(docker_stand_in):
    """What the mount prevents, through the same stand-in: the engine's recipe alone (before the launcher adds the
    mount) fails inside the container, and the container's own error reaches the learner."""
    from spark_labs.engines import resolve_engine
    from spark_labs.engines.launcher import start_command
    from spark_labs.engines.ports import free_port

    model, spec, port = str(prepare_embedded_model()), resolve_engine("vllm"), free_port("127.0.0.1")
    recipe = spec.build_docker(model=model, port=port, extra_args=[], served_name=model, image=spec.docker_image)
    handle = start_command(spec, recipe, host="127.0.0.1", port=port, served_name=model, docker=True)
    try:
        with pytest.raises(EngineStartError, match="is not a local folder"):
            handle.wait_ready(timeout=30, progress=False)
    finally:
        handle.stop()


def test_docker_refusing_the_port_is_reported_in_its_own_words_stand_in(docker_stand_in, monkeypatch):
    monkeypatch.setenv("DOCKER_STAND_IN_REFUSE", "1")
    with pytest.raises(EngineStartError, match="(?s)exited with code 125 while starting.*port is already allocated"):
        launch("vllm", str(prepare_embedded_model()), port="auto", docker=True, profile="spark", timeout=30,
               progress=False)


def test_tensorrt_llms_speculative_options_file_reaches_the_container_stand_in(docker_stand_in, tmp_path,
                                                                                monkeypatch):
    """Lab 04 §4's TensorRT-LLM set-ups pass a YAML file: the stand-in, like a container, sees only mounted host
    paths, so the engine starts only because the launcher mounted the file."""
    from spark_labs.engines import resolve_engine

    monkeypatch.setenv("SPARK_LABS_CACHE", str(tmp_path / "cache"))
    model = str(prepare_embedded_model())
    flags = resolve_engine("trtllm").speculative_args("draft", 4, "nvidia/Llama-3.1-8B-Instruct-FP4")
    engine = launch("trtllm", model, port="auto", docker=True, profile="spark", timeout=60, progress=False,
                    extra_args=flags)
    try:
        run = docker_stand_in()[0]
        assert f"{flags[1]}:{flags[1]}:ro" in run and run[run.index(flags[0]) + 1] == flags[1]
    finally:
        engine.stop()
