"""The one error of the sandbox package."""

__all__ = ["SandboxUnavailable"]


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be started on this machine (no bubblewrap, no user namespaces, no
    seccomp, an interpreter it cannot expose, ...); the message says why. Code is then not run
    at all: there is no unsandboxed fallback."""
