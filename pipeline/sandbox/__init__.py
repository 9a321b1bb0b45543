"""A strict local Altegio: the status callback as the contract allows it, with staged faults.

The dispatcher's tests, its benchmark and the demo talk to it instead of the real Altegio.
See docs/sandbox.md.
"""

from pipeline.sandbox.app import build_sandbox_app
from pipeline.sandbox.config import SandboxConfig, SandboxConfigError, parse_fault_spec
from pipeline.sandbox.runner import running_sandbox

__all__ = [
    "SandboxConfig",
    "SandboxConfigError",
    "build_sandbox_app",
    "parse_fault_spec",
    "running_sandbox",
]
