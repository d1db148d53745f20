"""XLA compile options that the installed jaxlib accepts (imported only under JAX).

Option names change between XLA releases (``xla_cpu_use_fusion_emitters`` is unknown to
jaxlib 0.12, which refuses the whole program), so each set is tried once on a tiny program
and dropped if refused: the options only ever buy compile time, never change results.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["supported_options"]


@functools.lru_cache(maxsize=16)
def _accepted(items: tuple[tuple[str, Any], ...]) -> bool:
    import jax

    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(items))(1.0)
    except Exception:  # jaxlib raises its own runtime error type for unknown options
        return False
    return True


def supported_options(options: dict[str, Any] | None) -> dict[str, Any] | None:
    """``options`` if this jaxlib compiles with them, else None (compile with defaults)."""
    if not options:
        return None
    return options if _accepted(tuple(sorted(options.items()))) else None
