"""Lab 00: the prerequisites self-check (environment, hands-on 4-bit load, six skill areas)."""

from .environment import Check, environment_checks, required_failures
from .handson import QuantizedRun, load_4bit_and_generate
from .skills import SKILLS_QUIZ, Quiz, readiness

__all__ = ["Check", "QuantizedRun", "Quiz", "SKILLS_QUIZ", "environment_checks", "load_4bit_and_generate",
           "readiness", "required_failures"]
