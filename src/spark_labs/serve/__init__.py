"""spark-labs' production gateway (lab 05): OpenAI- and Ollama-compatible routes in front of an in-process
transformers model or of one or more OpenAI-compatible engines (vLLM, SGLang, TensorRT-LLM, llama.cpp)."""

from .app import create_app
from .backends import Backend, GenerationRequest, Outcome, Piece, TransformersBackend, Usage
from .checks import bucket_mistakes, metrics_mistakes, sse_mistakes, try_sse_events
from .errors import GatewayError
from .logs import LogCollector
from .metrics import GatewayMetrics
from .proxy import ProxyBackend
from .runner import GatewayHandle, start_app, start_gateway
from .settings import GatewaySettings

__all__ = ["Backend", "GatewayError", "GatewayHandle", "GatewayMetrics", "GatewaySettings", "GenerationRequest",
           "LogCollector", "Outcome", "Piece", "ProxyBackend", "TransformersBackend", "Usage", "bucket_mistakes",
           "create_app", "metrics_mistakes", "sse_mistakes", "start_app", "start_gateway", "try_sse_events"]
