"""Minimal pytrees with JAX's rules: tuples (named tuples too), lists and dicts are
nodes (dict keys in sorted order), ``None`` is an empty node, anything else a leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["TreeDef", "tree_flatten", "tree_map", "tree_unflatten", "broadcast_prefix"]

TreeDef = tuple[Any, ...]
"""Structure of a pytree without its leaves; equal structures compare equal."""

_LEAF: TreeDef = ("*",)
_NONE: TreeDef = ("None",)


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves of ``tree`` in JAX order and its structure."""
    leaves: list[Any] = []

    def walk(node: Any) -> TreeDef:
        if node is None:
            return _NONE
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return ("namedtuple", type(node), tuple(walk(c) for c in node))
        if isinstance(node, tuple | list):
            return (type(node).__name__, tuple(walk(c) for c in node))
        if isinstance(node, dict):
            keys = tuple(sorted(node))
            return ("dict", keys, tuple(walk(node[k]) for k in keys))
        leaves.append(node)
        return _LEAF

    return leaves, walk(tree)


def tree_unflatten(treedef: TreeDef, leaves: list[Any]) -> Any:
    """Inverse of :func:`tree_flatten`."""
    it = iter(leaves)

    def build(d: TreeDef) -> Any:
        kind = d[0]
        if d == _LEAF:
            return next(it)
        if d == _NONE:
            return None
        if kind == "namedtuple":
            return d[1](*(build(c) for c in d[2]))
        if kind == "tuple":
            return tuple(build(c) for c in d[1])
        if kind == "list":
            return [build(c) for c in d[1]]
        return {k: build(c) for k, c in zip(d[1], d[2], strict=True)}

    out = build(treedef)
    _exhausted(it)
    return out


def _exhausted(it: Iterator[Any]) -> None:
    for _ in it:
        raise ValueError("too many leaves for the tree structure")


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` applied leaf-wise to trees of one structure."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for other in rest:
        o_leaves, o_def = tree_flatten(other)
        if o_def != treedef:
            raise ValueError(f"pytree structures differ: {_describe(treedef)} vs {_describe(o_def)}")
        others.append(o_leaves)
    return tree_unflatten(treedef, [fn(*args) for args in zip(leaves, *others, strict=True)])


def broadcast_prefix(prefix: Any, tree: Any, what: str) -> list[Any]:
    """One entry of ``prefix`` per leaf of ``tree``; ``prefix`` is a tree prefix of ``tree``
    whose leaves (ints or None) apply to whole subtrees, as ``in_axes`` does in JAX."""
    out: list[Any] = []

    def walk(p: Any, node: Any) -> None:
        if p is None or isinstance(p, int):
            out.extend([p] * len(tree_flatten(node)[0]))
            return
        p_leaves_def = tree_flatten(p)[1]
        if isinstance(p, tuple | list) and isinstance(node, tuple | list) and len(p) == len(node):
            for pc, nc in zip(p, node, strict=True):
                walk(pc, nc)
            return
        if isinstance(p, dict) and isinstance(node, dict) and sorted(p) == sorted(node):
            for k in sorted(p):
                walk(p[k], node[k])
            return
        raise ValueError(
            f"{what} structure {_describe(p_leaves_def)} is not a prefix of the argument "
            f"structure {_describe(tree_flatten(node)[1])}"
        )

    walk(prefix, tree)
    return out


def _describe(treedef: TreeDef) -> str:
    if treedef == _LEAF:
        return "*"
    if treedef == _NONE:
        return "None"
    kind = treedef[0]
    if kind == "dict":
        inner = ", ".join(f"{k!r}: {_describe(c)}" for k, c in zip(treedef[1], treedef[2], strict=True))
        return "{" + inner + "}"
    children = treedef[2] if kind == "namedtuple" else treedef[1]
    inner = ", ".join(_describe(c) for c in children)
    return f"[{inner}]" if kind == "list" else f"({inner})"
