"""One settings object for the gateway: defaults < environment (``SPARK_LABS_GATEWAY_*``) < CLI flags.

Every knob the gateway has lives here so the CLI, the app factory, a notebook and the docs table all read
the same names. Environment variables use the field name upper-cased after the prefix, e.g.
``SPARK_LABS_GATEWAY_MAX_IN_FLIGHT=32``; list fields take a comma-separated string
(``SPARK_LABS_GATEWAY_API_KEYS=key1,key2``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]  # NoDecode: read "a,b" from the env, not JSON


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPARK_LABS_GATEWAY_", extra="ignore")

    # --- where requests go
    upstreams: CommaList = Field(default_factory=list, description="OpenAI-compatible upstream URLs (proxy backend)")
    served_model_name: str | None = Field(None, description="public model name; maps to each upstream's model")
    # --- authentication and rate limits
    api_keys: CommaList = Field(default_factory=list, description="accepted Bearer keys; none (and no file) = auth off")
    api_keys_file: Path | None = Field(None, description="file with one accepted key per line (# comments)")
    rate_limit_rps: float = Field(0.0, ge=0, description="per-key token-bucket refill, requests/s (0 = off)")
    rate_limit_burst: int = Field(20, ge=1, description="per-key bucket size: requests allowed back to back")
    public_paths: CommaList = Field(default_factory=list, description="paths answered without a key or rate limit, "
                                    "added to /health, /ready, /metrics, /api/version and the API docs; a "
                                    "trailing * makes a prefix public (/ui/*)")
    max_auth_failures: int = Field(10, ge=0, description="wrong API keys one client address may send per "
                                   "auth_failure_window_s; past it every request from that address that needs "
                                   "a key gets 429 (0 = no throttle)")
    auth_failure_window_s: float = Field(60.0, gt=0, description="the window max_auth_failures counts in")
    trusted_proxies: CommaList = Field(default_factory=list, description="reverse proxies (addresses or "
                                       "networks such as 10.0.0.0/8) whose X-Forwarded-For names the client; "
                                       "none = the connection's own address is the client")
    # --- connections (enforced by the server, before any request is read)
    request_read_timeout_s: float = Field(10.0, gt=0, description="a client must send a whole request (head "
                                          "and body) this soon after connecting or after its last response; "
                                          "else 408 and the connection closes")
    max_connections: int = Field(512, ge=1, description="open client connections at once; past it an idle one "
                                 "is closed, or the new one gets 503 (capped below the open-file limit)")
    max_connections_per_client: int = Field(128, ge=0, description="open connections from one client address "
                                            "(503 past it); 0 = no per-address cap (behind a reverse proxy)")
    max_header_bytes: int = Field(32_768, ge=1024, description="largest request head (request line and "
                                  "headers); 431 and the connection closes as soon as a head passes it")
    max_header_count: int = Field(100, ge=8, description="most header lines in one request (431 above)")
    # --- admission control
    max_in_flight: int = Field(64, ge=1, description="generations served at once")
    max_queue: int = Field(256, ge=0, description="requests waiting for a slot; more are rejected with 503")
    queue_timeout_s: float = Field(30.0, gt=0, description="longest wait for a slot before a 503")
    # --- request bounds
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body (413 above)")
    max_tokens_limit: int = Field(4096, ge=1, description="largest max_tokens / num_predict a client may ask for")
    default_max_tokens: int = Field(256, ge=1, description="max_tokens when the client sends none")
    max_messages: int = Field(256, ge=1, description="most messages in one chat request")
    # --- upstream behaviour
    upstream_connect_timeout_s: float = Field(5.0, gt=0, description="TCP connect timeout per upstream try")
    upstream_keep_warm_s: float = Field(0.0, ge=0, description="re-dial idle upstream connections before they "
                                        "expire, for this long after the last request; 0 = let them expire "
                                        "(off by default: a thread-per-connection upstream holds a thread for "
                                        "each idle connection)")
    upstream_first_byte_timeout_s: float = Field(60.0, gt=0,
                                                 description="wait for the first byte / between bytes (504)")
    upstream_total_timeout_s: float = Field(600.0, gt=0, description="longest whole upstream request (504)")
    health_interval_s: float = Field(5.0, ge=0, description="active health check period; 0 = no checks")
    health_timeout_s: float = Field(2.0, gt=0, description="one health probe's timeout")
    breaker_failures: int = Field(3, ge=1, description="consecutive failures that open an upstream's breaker")
    breaker_cooldown_s: float = Field(10.0, gt=0, description="open time before one half-open trial request")
    # --- lifecycle and presentation
    drain_timeout_s: float = Field(30.0, ge=0, description="on shutdown, wait this long for in-flight streams")
    cors_origins: CommaList = Field(default_factory=list,
                                    description="allowed CORS origins ('*' = any); none = CORS off")
    metrics_upstream_addresses: bool = Field(False, description="label upstreams on /metrics and in errors "
                                             "by host:port instead of upstream-1, upstream-2... (the order "
                                             "given); /ready shows the map to key holders either way")
    log_json: bool = Field(True, description="one JSON object per log line (else plain text)")
    log_level: str = Field("info", description="gateway log level")

    @field_validator("upstreams", "api_keys", "cors_origins", "public_paths", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("public_paths")
    @classmethod
    def _paths_are_absolute(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"public path {path!r} must start with '/' (e.g. /ui/* or /my/status)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted proxy {proxy!r} is not an IP address or network (e.g. 10.0.0.5 or "
                                 "10.0.0.0/8)") from None
        return value

    def load_api_keys(self) -> set[str]:
        """Keys from the setting and the keys file together; an empty set means authentication is off."""
        keys = {k for k in self.api_keys if k}
        if self.api_keys_file is not None:
            for line in Path(self.api_keys_file).read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.add(line)
        return keys
