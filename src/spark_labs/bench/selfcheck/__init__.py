"""The instrument checking itself, kept apart from the measuring core (as GuideLLM keeps its mock server apart):

- ``calibration``: a streaming server with a fixed TTFT and TPOT, run as its own process
  (``python -m spark_labs.bench.selfcheck.calibration``); it measures the harness, never an engine.
- ``local_server``: start such a helper server (or the gateway) through the engine launcher.
- ``harness_overhead``: what the harness adds, against the calibration server (``spark-labs bench overhead``).
- ``gateway_overhead``: what the spark-labs gateway adds in front of an upstream (``spark-labs bench gateway``).
- ``accuracy``: our numbers against the engine's own histograms and ``vllm bench serve``
  (``spark-labs bench accuracy``).
"""

from .gateway_overhead import GatewayOverhead, measure_gateway
from .harness_overhead import CalibrationServer, OverheadResult, sustained_chunks_per_s
from .local_server import LocalServer

__all__ = ["CalibrationServer", "GatewayOverhead", "LocalServer", "OverheadResult", "measure_gateway",
           "sustained_chunks_per_s"]
