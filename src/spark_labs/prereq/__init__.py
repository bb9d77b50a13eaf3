"""Lab 00: the prerequisites self-check (environment, hands-on 4-bit load, six skill areas)."""

from .environment import Check, checks_markdown, environment_checks, required_failures
from .handson import (
                      QuantizedRun,
                      bf16_footprint,
                      count_4bit_layers,
                      handson_problems,
                      hide_known_bitsandbytes_warning,
                      load_4bit_and_generate,
)
from .skills import SKILLS_QUIZ, Quiz, readiness

__all__ = ["Check", "QuantizedRun", "Quiz", "SKILLS_QUIZ", "bf16_footprint", "checks_markdown", "count_4bit_layers",
           "environment_checks", "handson_problems", "hide_known_bitsandbytes_warning", "load_4bit_and_generate",
           "readiness", "required_failures"]
