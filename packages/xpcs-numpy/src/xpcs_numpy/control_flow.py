"""``vmap``, ``scan``, ``fori_loop``, ``cond`` and ``while_loop`` as Python loops with the
semantics of ``jax.vmap`` / ``jax.lax``: same argument rules, pytrees, carry checks and
error types, so code written against one backend runs unchanged on the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xpcs_numpy.pytree import broadcast_prefix, tree_flatten, tree_map, tree_unflatten

__all__ = ["cond", "fori_loop", "scan", "vmap", "while_loop"]


def _leaf_type(leaf: Any) -> tuple[tuple[int, ...], np.dtype[Any] | None]:
    # Python scalars are weakly typed in JAX: only their shape is fixed.
    if isinstance(leaf, bool | int | float | complex):
        return (), None
    arr = np.asarray(leaf)
    return arr.shape, arr.dtype


def _check_carry(init: Any, new: Any, where: str) -> None:
    init_leaves, init_def = tree_flatten(init)
    new_leaves, new_def = tree_flatten(new)
    if init_def != new_def:
        raise TypeError(f"{where} must return a carry with the structure of its input")
    for a, b in zip(init_leaves, new_leaves, strict=True):
        (sa, da), (sb, db) = _leaf_type(a), _leaf_type(b)
        if sa != sb or (da is not None and db is not None and da != db):
            raise TypeError(
                f"{where} must return a carry of the same type as its input: "
                f"got shape {sb} dtype {db} for a carry of shape {sa} dtype {da}"
            )


def _as_arrays(tree: Any) -> Any:
    return tree_map(np.asarray, tree)


def _scalar_predicate(pred: Any, where: str) -> bool:
    arr = np.asarray(pred)
    if arr.ndim != 0:
        raise TypeError(f"{where} must be a scalar, got an array of shape {arr.shape}")
    return bool(arr)


def vmap(
    fun: Callable[..., Any], in_axes: int | Sequence[Any] | None = 0, out_axes: Any = 0
) -> Callable[..., Any]:
    """``fun`` applied to each slice along the mapped axes, outputs stacked at ``out_axes``."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    def mapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(
                f"vmap in_axes has {len(in_axes)} entries but the function got "
                f"{len(args)} positional arguments"
            )
        leaves, treedef = tree_flatten((args, kwargs))
        # kwargs are always mapped over their leading axis, as in JAX
        axes = broadcast_prefix((in_axes, 0), (args, kwargs), "vmap in_axes")
        arrays = [np.asarray(leaf) if ax is not None else leaf for leaf, ax in zip(leaves, axes, strict=True)]
        sizes = set()
        norm_axes: list[int | None] = []
        for arr, ax in zip(arrays, axes, strict=True):
            if ax is None:
                norm_axes.append(None)
                continue
            if not -arr.ndim <= ax < arr.ndim:
                raise ValueError(f"vmap in_axes {ax} is out of bounds for an argument of rank {arr.ndim}")
            norm_axes.append(ax % arr.ndim)
            sizes.add(arr.shape[ax])
        if not sizes:
            raise ValueError("vmap must have at least one non-None value in in_axes")
        if len(sizes) > 1:
            raise ValueError(f"vmap got inconsistent sizes for array axes to be mapped: {sorted(sizes)}")
        (size,) = sizes
        if size == 0:
            raise ValueError("vmap over an axis of size 0 is not supported by the NumPy backend")
        results = []
        for i in range(size):
            sliced = [
                arr if ax is None else np.take(arr, i, axis=ax)
                for arr, ax in zip(arrays, norm_axes, strict=True)
            ]
            call_args, call_kwargs = tree_unflatten(treedef, sliced)
            results.append(fun(*call_args, **call_kwargs))
        out_leaves_per_call = [tree_flatten(r) for r in results]
        out_def = out_leaves_per_call[0][1]
        out_ax = broadcast_prefix(out_axes, results[0], "vmap out_axes")
        stacked = []
        for j, ax in enumerate(out_ax):
            column = [np.asarray(leaves_j[j]) for leaves_j, _ in out_leaves_per_call]
            if ax is None:
                stacked.append(column[0])
                continue
            nd = column[0].ndim + 1
            if not -nd <= ax < nd:
                raise ValueError(f"vmap out_axes {ax} is out of bounds for an output of rank {nd}")
            stacked.append(np.stack(column, axis=ax))
        return tree_unflatten(out_def, stacked)

    return mapped


def scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
) -> tuple[Any, Any]:
    """``carry, y = f(carry, x)`` over the leading axis of ``xs``; ``ys`` stacked in input order."""
    x_leaves, x_def = tree_flatten(xs)
    x_arrays = [np.asarray(leaf) for leaf in x_leaves]
    lengths = {a.shape[0] if a.ndim else -1 for a in x_arrays}
    if -1 in lengths:
        raise ValueError("scan got a value with no leading axis to scan over")
    if length is not None:
        lengths.add(int(length))
    if not lengths:
        raise ValueError("scan got no values to scan over and `length` not provided")
    if len(lengths) > 1:
        raise ValueError(f"scan got inconsistent lengths: {sorted(lengths)}")
    (n,) = lengths

    def x_at(i: int) -> Any:
        return tree_unflatten(x_def, [a[i] for a in x_arrays])

    if n == 0:
        # Evaluate once on placeholders to learn the output structure, as tracing does.
        template = tree_unflatten(x_def, [np.zeros(a.shape[1:], a.dtype) for a in x_arrays])
        carry_t, y_t = f(init, template)
        _check_carry(init, carry_t, "scan body function")
        ys = tree_map(lambda y: np.zeros((0, *np.shape(y)), np.asarray(y).dtype), y_t)
        return _as_arrays(init), ys
    carry = init
    ys_list: list[Any] = [None] * n
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        new_carry, y = f(carry, x_at(i))
        _check_carry(init, new_carry, "scan body function")
        carry = new_carry
        ys_list[i] = y
    y_leaves0, y_def = tree_flatten(ys_list[0])
    columns = [[] for _ in y_leaves0]  # type: list[list[Any]]
    for y in ys_list:
        leaves, d = tree_flatten(y)
        if d != y_def:
            raise TypeError("scan body function must return outputs of one structure at every step")
        for col, leaf in zip(columns, leaves, strict=True):
            col.append(np.asarray(leaf))
    ys = tree_unflatten(y_def, [np.stack(col) for col in columns])
    return _as_arrays(carry), ys


def fori_loop(lower: int, upper: int, body_fun: Callable[[Any, Any], Any], init_val: Any) -> Any:
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``."""
    val = init_val
    for i in range(int(lower), int(upper)):
        new = body_fun(np.asarray(i), val)
        _check_carry(init_val, new, "fori_loop body_fun")
        val = new
    return _as_arrays(val)


def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], init_val: Any) -> Any:
    """``val = body_fun(val)`` while ``cond_fun(val)`` is true."""
    val = init_val
    while _scalar_predicate(cond_fun(val), "while_loop cond_fun output"):
        new = body_fun(val)
        _check_carry(init_val, new, "while_loop body_fun")
        val = new
    return _as_arrays(val)


def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any], *operands: Any) -> Any:
    """``true_fun(*operands)`` if the scalar ``pred`` is true, else ``false_fun(*operands)``."""
    branch = true_fun if _scalar_predicate(pred, "cond predicate") else false_fun
    return _as_arrays(branch(*operands))
