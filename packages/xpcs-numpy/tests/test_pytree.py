from collections import namedtuple

import pytest

from xpcs_numpy.pytree import broadcast_prefix, tree_flatten, tree_map, tree_unflatten

Point = namedtuple("Point", "x y")


def test_flatten_order_and_roundtrip():
    tree = {"b": (1, [2, None, 3]), "a": Point(4, {"z": 5, "y": 6})}
    leaves, treedef = tree_flatten(tree)
    # dict keys sorted, None is an empty node (no leaf), as in JAX
    assert leaves == [4, 6, 5, 1, 2, 3]
    rebuilt = tree_unflatten(treedef, leaves)
    assert rebuilt == tree
    assert isinstance(rebuilt["a"], Point)


def test_structures_compare():
    assert tree_flatten((1, 2))[1] != tree_flatten([1, 2])[1]
    assert tree_flatten({"a": 1})[1] == tree_flatten({"a": 9})[1]


def test_tree_map_and_mismatch():
    assert tree_map(lambda a, b: a + b, (1, {"k": 2}), (10, {"k": 20})) == (11, {"k": 22})
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda a, b: a, (1, 2), (1, 2, 3))


def test_unflatten_rejects_extra_leaves():
    _, treedef = tree_flatten((1, 2))
    with pytest.raises(ValueError, match="too many leaves"):
        tree_unflatten(treedef, [1, 2, 3])


def test_broadcast_prefix():
    tree = ((1, 2), {"a": 3, "b": (4, 5)})
    assert broadcast_prefix(0, tree, "in_axes") == [0, 0, 0, 0, 0]
    assert broadcast_prefix((None, {"a": 1, "b": 0}), tree, "in_axes") == [None, None, 1, 0, 0]
    with pytest.raises(ValueError, match="not a prefix"):
        broadcast_prefix((0, 1, 2), tree, "in_axes")
