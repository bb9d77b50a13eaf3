"""The judge: runs in the grading kernel, which executes the reference notebook's own cells; learner code runs
in a second kernel behind the wall, and only plain values cross.

For each learner cell of the graded notebook the grading kernel runs ``__spark_labs_judge__.run(k)``:

1. the exercise cell's *setup* (the reference's statements before the learner's part: imports, given data)
   runs here, so later reference cells find them;
2. the exercise's declared **inputs** are sent to the learner's kernel (pickled: they are the reference's
   values), the learner's cell runs there, and its output is shown in this cell;
3. the declared **outputs** come back as JSON (:mod:`.exchange`): values are rebuilt by trusted code,
   functions become :class:`LearnerFunction` proxies that call the learner's function with values;
4. the reference's statements after the learner's part (*after*) run here with those outputs.

Hooks, patched modules, stdout filters and forged objects in the learner's kernel have nothing to act on:
the checkpoint cells run here, in a kernel no learner code has touched.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from types import ModuleType, SimpleNamespace

from .boundary import CANNOT_CONTAIN
from .contract import library_answers_used
from .exchange import ModuleRef, from_plain, pack

PLAN_ENV = "SPARK_LABS_JUDGE_PLAN"
SIDE = "__spark_labs_side__"
CONNECT_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 120.0
GRACE_S = 10.0
ENDPOINT_FIELDS = ("base_url", "url", "metrics_url", "served_name", "name", "model", "kind")
DROPPED_MIMETYPES = ("application/vnd.jupyter.widget-view+json",)  # widgets cannot live in another kernel


class LearnerCellError(Exception):
    """The learner's cell raised; subclasses carry the learner's exception name (see :func:`_learner_error`)."""

    def __init__(self, message: str, traceback_lines: list[str]):
        super().__init__(message)
        self.traceback_lines = traceback_lines

    def _render_traceback_(self) -> list[str]:
        return self.traceback_lines or [f"{type(self).__name__}: {self}"]


class LearnerRaised(Exception):
    """A learner's function raised an exception that is not one of Python's own (its name is kept)."""


class LearnerUnavailable(RuntimeError):
    """The learner's kernel did not start, stopped answering, or broke the exchange."""


class NotContained(LearnerUnavailable):
    """The wall around the learner's kernel could not be built: nothing of the learner's ran."""


def _learner_error(ename: str, evalue: str, traceback_lines: list[str]) -> LearnerCellError:
    name = ename if ename.isidentifier() else "LearnerError"
    return type(name, (LearnerCellError,), {})(evalue, traceback_lines)


def _reraise(report: dict, path: str) -> Exception:
    """The learner function's exception, as the same builtin type when it is one (a checkpoint may expect a
    RuntimeError or a NotImplementedError), else :class:`LearnerRaised` naming it."""
    message = f"{report.get('message', '')}"
    kind = getattr(builtins, str(report.get("type", "")), None)
    if report.get("builtin") and isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # noqa: BLE001 - an exception type that wants other arguments
            pass
    return LearnerRaised(f"{path} raised {report.get('type')}: {message}{report.get('where', '')}")


class LearnerLink:
    """The learner's kernel: started behind the wall by ``command``, reached through its connection info."""

    def __init__(self, command: list[str], env: dict, cwd: str, cell_timeout: float, output_limit: int,
                 log: str = os.devnull):
        self.cell_timeout, self.output_limit = cell_timeout, output_limit
        self.capped = False  # the last execute's output hit the cap
        self.shown: dict[str, list[dict]] = {}  # outputs shown under a display id, kept in their last state
        with open(log, "ab") as errors:
            self.host = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                         env=env, cwd=cwd, start_new_session=True, text=True)
        line = self._read_host_line(CONNECT_TIMEOUT_S)
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            status = self.host.poll()
            if status is None:
                self.host.kill()
                self.host.wait()
            said = _tail(log)
            if status == CANNOT_CONTAIN:
                raise NotContained(said or "the sandbox could not be built") from None
            raise LearnerUnavailable(f"the learner's kernel did not start: {said or 'no message'}") from None
        from jupyter_client import BlockingKernelClient

        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=CONNECT_TIMEOUT_S)
        except RuntimeError as exc:
            raise LearnerUnavailable(f"the learner's kernel did not answer: {exc}") from None
        self.execute(f"import spark_labs.grading.learner_side as {SIDE}", silent=True)

    def _read_host_line(self, timeout: float) -> str:
        answer: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: answer.put(self.host.stdout.readline()), daemon=True).start()
        try:
            return answer.get(timeout=timeout).strip()
        except queue.Empty:
            return ""

    def interrupt(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.host.stdin.write("interrupt\n")
            self.host.stdin.flush()

    def execute(self, code: str, *, silent: bool = False, user_expressions: dict | None = None,
                timeout: float | None = None) -> tuple[dict, list[dict]]:
        """Run ``code`` in the learner's kernel; its reply content and its outputs (nbformat dicts, capped)."""
        timeout = timeout or self.cell_timeout
        msg_id = self.client.execute(code, silent=silent, store_history=not silent,
                                     user_expressions=user_expressions or {}, allow_stdin=False)
        self.capped = False
        outputs: list[dict] = []
        size, capped, deadline, interrupted = 0, False, time.monotonic() + timeout, False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:
                    raise LearnerUnavailable(f"the learner's kernel did not stop {GRACE_S:.0f} s after it was "
                                             f"interrupted")
                self.interrupt()
                interrupted, deadline = True, time.monotonic() + GRACE_S
                outputs.append({"output_type": "stream", "name": "stderr",
                                "text": f"\n[grader] the cell ran past {timeout:.0f} s and was interrupted\n"})
                continue
            try:
                msg = self.client.get_iopub_msg(timeout=min(left, 1.0))
            except queue.Empty:
                if not self.host_alive():
                    raise LearnerUnavailable("the learner's kernel stopped (out of memory, or killed)") from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            output = _output(kind, content)
            if capped:
                continue
            if kind == "update_display_data":  # counted as the bytes it adds to what is kept
                added = redraw(self.shown, content, room=self.output_limit - size)
                over = added is None
                size += added or 0
            elif output is not None:
                size += len(json.dumps(output))
                over = size > self.output_limit
            else:
                continue
            if over:
                capped = self.capped = True
                self.interrupt()
                outputs.append({"output_type": "stream", "name": "stderr",
                                "text": f"\n[grader] output stopped after {self.output_limit:,} bytes; the cell "
                                        f"was interrupted\n"})
                continue
            if output is not None:
                outputs.append(output)
                remember(self.shown, content, output)
        reply = self.client.get_shell_msg(timeout=GRACE_S)
        while reply.get("parent_header", {}).get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=GRACE_S)
        return reply["content"], outputs

    def host_alive(self) -> bool:
        return self.host.poll() is None

    def expression(self, expression: str, timeout: float = CALL_TIMEOUT_S) -> str:
        """Evaluate one expression returning a str in the learner's kernel; the string, read as a literal."""
        reply, _ = self.execute("", silent=True, user_expressions={"r": expression}, timeout=timeout)
        result = reply.get("user_expressions", {}).get("r", {})
        if result.get("status") != "ok":
            raise LearnerUnavailable(f"the learner's kernel could not answer ({result.get('ename', 'no reply')}: "
                                     f"{result.get('evalue', '')})")
        text = ast.literal_eval(result["data"]["text/plain"])
        if not isinstance(text, str):
            raise LearnerUnavailable("the learner's kernel answered with something other than text")
        return text

    def close(self) -> dict:
        """Stop the learner's kernel; the host's last report (processes it stopped, peak memory)."""
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        with contextlib.suppress(OSError, ValueError):
            self.host.stdin.close()
        line = self._read_host_line(30.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.host.wait(timeout=10)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return {}


def _tail(path: str, chars: int = 600) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()[-chars:].strip()
    except OSError:
        return ""


def remember(shown: dict[str, list[dict]], content: dict, output: dict) -> None:
    """Note an output shown under a display id, so that :func:`redraw` can keep it in its last state."""
    display_id = (content.get("transient") or {}).get("display_id")
    if display_id is not None and output.get("output_type") == "display_data":
        shown.setdefault(display_id, []).append(output)


def redraw(shown: dict[str, list[dict]], content: dict, room: int) -> int | None:
    """Apply an ``update_display_data`` to the outputs shown under its display id, as nbclient and JupyterLab do
    (the course's progress bars are redrawn in place). Returns the bytes this adds to what is kept (negative
    when it shrinks), or None, changing nothing, when that is more than ``room``."""
    targets = shown.get((content.get("transient") or {}).get("display_id"), [])
    data = {k: v for k, v in content.get("data", {}).items() if k not in DROPPED_MIMETYPES}
    added = sum(len(json.dumps(data)) - len(json.dumps(output["data"])) for output in targets)
    if added > room:
        return None
    for output in targets:
        output["data"] = data
    return added


def _output(kind: str, content: dict) -> dict | None:
    if kind == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"), "text": content.get("text", "")}
    if kind in ("display_data", "execute_result"):
        data = {k: v for k, v in content.get("data", {}).items() if k not in DROPPED_MIMETYPES}
        return {"output_type": "display_data", "data": data, "metadata": content.get("metadata", {})} if data else None
    if kind == "error":
        return {"output_type": "error", "ename": content.get("ename", ""), "evalue": content.get("evalue", ""),
                "traceback": content.get("traceback", [])}
    return None


class LearnerFunction:
    """A learner's function, called across the wall: arguments go as values, the result comes back as one."""

    def __init__(self, link: LearnerLink, path: str):
        self._link, self._path = link, path
        self.__name__ = path.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return f"<your function {self._path} (graded in its own kernel)>"

    def __call__(self, *args, **kwargs):
        text = self._link.expression(f"{SIDE}.call(globals(), {self._path!r}, {pack((args, kwargs))!r})",
                                     timeout=self._link.cell_timeout)
        answer = json.loads(text)
        if "generated" in answer:
            return iter([from_plain(item) for item in answer["generated"]])
        if "raised" in answer:
            report = answer["raised"]
            if "items" in report:
                return _then_raise([from_plain(item) for item in report["items"]], _reraise(report, self._path))
            raise _reraise(report, self._path)
        return from_plain(answer["value"])


def _then_raise(items: list, error: Exception):
    yield from items
    raise error


class LearnerObject:
    """An object that stays in the learner's kernel (a running server): attributes are read as values,
    methods are called as :class:`LearnerFunction`."""

    def __init__(self, link: LearnerLink, path: str, type_name: str):
        self._link, self._path, self._type = link, path, type_name

    def __repr__(self) -> str:
        return f"<your {self._type} {self._path} (in its own kernel)>"

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        path = f"{self._path}.{name}"
        answer = json.loads(self._link.expression(f"{SIDE}.send(globals(), [[{path!r}, 'value']])"))
        if path in answer["values"]:
            return from_plain(answer["values"][path])
        if path in answer["missing"]:
            raise AttributeError(f"{self._type} has no attribute {name!r}")
        return LearnerFunction(self._link, path)  # not plain data: a method, called across


def _input(kind: str, value):
    """The value an exercise receives for a declared input of ``kind``."""
    if isinstance(value, ModuleType):  # a module cannot be pickled: the learner's side imports it by name
        return ModuleRef(value.__name__)
    if kind == "endpoint":  # an engine handle holds a process: the learner's side gets its addresses only
        return SimpleNamespace(**{k: getattr(value, k) for k in ENDPOINT_FIELDS if hasattr(value, k)})
    return value


class Judge:
    """Lives in the grading kernel as ``__spark_labs_judge__``; holds the plan and the learner's kernel."""

    def __init__(self, plan: dict, namespace: dict):
        self.plan, self.namespace = plan, namespace
        self.link: LearnerLink | None = None
        self.failure: str | None = None
        self.not_contained: str | None = None
        self.capped_slots: list[int] = []  # learner cells whose output hit the cap (the grader notes them)

    @classmethod
    def from_environment(cls, namespace: dict) -> Judge:
        with open(os.environ[PLAN_ENV], encoding="utf-8") as file:
            return cls(json.load(file), namespace)

    def learner(self) -> LearnerLink:
        if self.failure:
            raise LearnerUnavailable(self.failure)
        if self.link is None or not self.link.host_alive():
            if self.link is not None:
                self.failure = "the learner's kernel stopped earlier in this run (out of memory, or killed)"
                raise LearnerUnavailable(self.failure)
            side = self.plan["learner"]
            try:
                self.link = LearnerLink(side["command"], side["env"], side["cwd"], side["cell_timeout"],
                                        side["output_limit"], side.get("log", os.devnull))
            except NotContained as exc:
                self.failure = self.not_contained = str(exc)
                raise
            except LearnerUnavailable as exc:
                self.failure = str(exc)
                raise
        return self.link

    def _quietly(self, code: str) -> None:
        """Run reference code here with its printed output dropped (the learner's run already showed it)."""
        if not code.strip():
            return
        from IPython.utils.capture import capture_output

        with capture_output(display=True):
            exec(compile(code, "<reference>", "exec"), self.namespace)  # noqa: S102 - the reference's own code

    def run(self, index: int) -> None:
        slot = self.plan["slots"][index]
        self._quietly(slot.get("setup", ""))
        link = self.learner()
        inputs = {name: _input(kind, self.namespace[name]) for name, kind in slot.get("inputs", {}).items()
                  if self.namespace.get(name) is not None}
        if inputs:
            link.execute(f"{SIDE}.receive(globals(), {pack(inputs)!r})", silent=True)
        if used := library_answers_used(slot["source"], slot.get("given_answers", {})):
            raise LearnerCellError(shortcut_message(used), [])
        reply, outputs = link.execute(slot["source"])
        if link.capped:
            self.capped_slots.append(index)
        error = _show(outputs)
        if reply.get("status") != "ok" and error is None:
            error = _learner_error(reply.get("ename", "Error"), reply.get("evalue", ""), reply.get("traceback", []))
        if error is not None:
            raise error
        self._bind(link, slot)
        self._quietly(slot.get("after", ""))

    def _bind(self, link: LearnerLink, slot: dict) -> None:
        outputs = slot.get("outputs", {})
        if not outputs:
            return
        specs = [[name, kind] for name, kind in outputs.items()]
        answer = json.loads(link.expression(f"{SIDE}.send(globals(), {specs!r})"))
        problems = []
        for name, kind in outputs.items():
            if name in answer["problems"]:
                problems.append(f"`{name}` {answer['problems'][name]}")
            elif name in answer["values"]:
                self.namespace[name] = self._rebuild(link, name, kind, answer["values"][name])
        if answer["missing"]:
            print(f"ℹ the grader found no {', '.join(f'`{n}`' for n in answer['missing'])} after this cell: the "
                  f"checks below need {'it' if len(answer['missing']) == 1 else 'them'}")
        if problems:
            raise LearnerCellError("this cell's results cannot be graded: " + "; ".join(problems), [])

    def _rebuild(self, link: LearnerLink, name: str, kind: str, data):
        if kind == "function":
            return LearnerFunction(link, name)
        if kind == "object":
            return LearnerObject(link, name, data.get("type", "object"))
        if kind == "quantized_model":
            from ..prereq.handson import load_quantized_like

            return load_quantized_like(self.namespace["model_path"], from_plain(data)["quantization_config"])
        return from_plain(data)

    def close(self) -> str:
        """Stop the learner's kernel; JSON of what its host reported (for the grader)."""
        report = self.link.close() if self.link is not None else {}
        return json.dumps({**report, "failure": self.failure, "not_contained": self.not_contained,
                           "capped_slots": self.capped_slots})


def shortcut_message(used: list[tuple[str, str]]) -> str:
    name, exercise = used[0]
    return (f"Exercise {exercise} is yours to write: this cell takes the course's own `{name}` from spark_labs, "
            f"which computes the answer, so it is not run and earns nothing. Write the steps in your own code "
            f"(the exercise's hints show how).")


def _show(outputs: list[dict]) -> LearnerCellError | None:
    """Show the learner's outputs in the cell running here; the error among them, to be raised."""
    from IPython.display import publish_display_data

    error = None
    for output in outputs:
        if output["output_type"] == "stream":
            stream = sys.stderr if output["name"] == "stderr" else sys.stdout
            stream.write(output["text"])
            stream.flush()
        elif output["output_type"] == "display_data":
            publish_display_data(output["data"], output.get("metadata") or {})
        elif output["output_type"] == "error":
            error = _learner_error(output["ename"], output["evalue"], output["traceback"])
    return error
