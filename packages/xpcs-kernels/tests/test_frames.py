"""Frame sources: arrays, h5py datasets and iterables read as consecutive chunks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from xpcs_device import use_backend
from xpcs_device.testing import HAS_JAX
from xpcs_kernels import frames
from xpcs_kernels.frames import FrameSourceError, auto_chunk_frames, frame_count, iter_frame_chunks

pytestmark = pytest.mark.usefixtures("fresh_backend")


@pytest.fixture(scope="module")
def h5py() -> Any:
    return pytest.importorskip("h5py", reason="h5py not installed (the test extra has it)")


def stack(n: int = 10, h: int = 4, w: int = 5, dtype: Any = np.uint16) -> np.ndarray:
    return np.random.default_rng(n).poisson(2.0, size=(n, h, w)).astype(dtype)


def sizes(chunks: list[np.ndarray]) -> list[int]:
    return [c.shape[0] for c in chunks]


# ----------------------------------------------------------------------- arrays
@pytest.mark.parametrize(
    ("chunk_frames", "expected"), [(1, [1] * 10), (3, [3, 3, 3, 1]), (10, [10]), (99, [10])]
)
def test_array_chunks_cover_the_stack(chunk_frames, expected):
    data = stack()
    chunks = list(iter_frame_chunks(data, chunk_frames))
    assert sizes(chunks) == expected
    np.testing.assert_array_equal(np.concatenate(chunks), data)
    assert all(c.dtype == data.dtype and isinstance(c, np.ndarray) for c in chunks)


def test_chunks_are_read_only_and_the_source_stays_writable():
    data = stack()
    chunk = next(iter_frame_chunks(data, 4))
    assert not chunk.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        chunk[0, 0, 0] = 7
    assert data.flags.writeable


def test_range_with_unaligned_start_keeps_boundaries_on_multiples():
    data = stack(20)
    chunks = list(iter_frame_chunks(data, 4, start=3, stop=17))
    assert sizes(chunks) == [1, 4, 4, 4, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), data[3:17])


def test_automatic_chunk_size_follows_the_budget(monkeypatch):
    assert auto_chunk_frames((1024, 1024)) == 32
    assert auto_chunk_frames((4096, 4096)) == 2
    assert auto_chunk_frames((100_000, 100_000)) == 1
    monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", 3 * 8 * 4 * 5)
    assert sizes(list(iter_frame_chunks(stack()))) == [3, 3, 3, 1]


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5), (7,)])
def test_array_that_is_not_a_stack_is_refused_naming_its_shape(shape):
    with pytest.raises(
        FrameSourceError, match=f"got shape {tuple(shape)}".replace("(", r"\(").replace(")", r"\)")
    ):
        iter_frame_chunks(np.zeros(shape))


@pytest.mark.parametrize("dtype", [bool, np.complex128, object, "U3", "datetime64[s]"])
def test_non_numeric_frames_are_refused(dtype):
    with pytest.raises(TypeError, match="dtype"):
        iter_frame_chunks(np.zeros((2, 3, 3), dtype=dtype))


@pytest.mark.parametrize(
    ("start", "stop", "match"),
    [
        (-1, None, "start must be"),
        (0, -2, "stop must be"),
        (5, 3, "before start"),
        (0, 11, "beyond the end"),
        (12, None, "beyond the end"),
        (1.5, None, "start must be"),
    ],
)
def test_bad_ranges(start, stop, match):
    with pytest.raises(ValueError, match=match):
        iter_frame_chunks(stack(), start=start, stop=stop)


@pytest.mark.parametrize("chunk_frames", [0, -3, 2.5, True])
def test_bad_chunk_frames(chunk_frames):
    with pytest.raises(ValueError, match="chunk_frames must be a positive integer"):
        iter_frame_chunks(stack(), chunk_frames)


@pytest.mark.parametrize("source", ["frames.h5", b"x", {"a": 1}, 42, None])
def test_sources_that_are_not_frames(source):
    with pytest.raises(TypeError, match="frame source must be"):
        iter_frame_chunks(source)


def test_frame_count():
    data = stack(10)
    assert frame_count(data) == 10
    assert frame_count(data, start=2, stop=7) == 5
    assert frame_count(iter([data])) is None
    with pytest.raises(ValueError, match="beyond the end"):
        frame_count(data, stop=11)


@pytest.mark.jax
@pytest.mark.skipif(not HAS_JAX, reason="JAX (xpcs-jax) not installed")
def test_jax_array_source():
    data = stack(9)
    with use_backend("jax") as b:
        chunks = list(iter_frame_chunks(b.asarray(data), 4))
    assert sizes(chunks) == [4, 4, 1]
    assert all(isinstance(c, np.ndarray) for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), data)


# -------------------------------------------------------------------- iterables
def test_iterable_of_frames_and_chunks_is_rebatched():
    data = stack(11)
    items = [data[0], data[1:5], data[5], data[6:11]]
    chunks = list(iter_frame_chunks(iter(items), 3))
    assert sizes(chunks) == [3, 3, 3, 2]
    np.testing.assert_array_equal(np.concatenate(chunks), data)
    assert all(not c.flags.writeable for c in chunks)


def test_iterable_default_batches_by_budget(monkeypatch):
    monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", 4 * 8 * 4 * 5)
    data = stack(10)
    assert sizes(list(iter_frame_chunks(list(data)))) == [4, 4, 2]


def test_iterable_range_stops_reading_at_stop():
    data = stack(12)
    pulled = []

    def gen() -> Iterator[np.ndarray]:
        for i in range(0, 12, 2):
            pulled.append(i)
            yield data[i : i + 2]

    chunks = list(iter_frame_chunks(gen(), 3, start=3, stop=7))
    np.testing.assert_array_equal(np.concatenate(chunks), data[3:7])
    assert pulled == [0, 2, 4, 6]  # nothing read past frame 7


def test_iterable_ending_before_stop():
    with pytest.raises(FrameSourceError, match="ended after 4 frames, before stop=6"):
        list(iter_frame_chunks(iter([stack(4)]), stop=6))


def test_inconsistent_frame_shapes_name_the_chunk_index():
    items = [np.zeros((2, 4, 5)), np.zeros((4, 5)), np.zeros((1, 4, 6))]
    with pytest.raises(FrameSourceError, match=r"chunk 2 .* shape \(4, 6\).* \(4, 5\)"):
        list(iter_frame_chunks(items))


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((1, 2, 4, 5))])
def test_iterator_item_of_wrong_rank_names_its_index(bad):
    with pytest.raises(FrameSourceError, match="chunk 1 of the frame iterator has shape"):
        list(iter_frame_chunks([np.zeros((4, 5)), bad]))


def test_iterator_item_of_wrong_dtype_names_its_index():
    with pytest.raises(TypeError, match="chunk 1 of the frame iterator has dtype complex128"):
        list(iter_frame_chunks([np.zeros((4, 5)), np.zeros((4, 5), dtype=complex)]))


def test_ragged_iterator_item():
    with pytest.raises(FrameSourceError, match=r"chunk 0 .* not a regular array"):
        list(iter_frame_chunks([[[1, 2], [3]]]))


def test_dtype_change_starts_a_new_chunk_without_promotion():
    items = [np.ones((2, 3, 3), np.uint8), np.ones((2, 3, 3), np.uint16)]
    chunks = list(iter_frame_chunks(items, 10))
    assert [(c.shape[0], c.dtype) for c in chunks] == [(2, np.uint8), (2, np.uint16)]


# ----------------------------------------------------------------------- h5py
@pytest.fixture
def read_spy(h5py, monkeypatch):
    """Records the frame ranges h5py is asked for (Dataset.__getitem__ with a slice)."""
    reads: list[tuple[int, int]] = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        if isinstance(key, slice):
            reads.append((key.start, key.stop))
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    return reads


def test_chunked_dataset_is_read_in_whole_hdf5_chunks(tmp_path, h5py, read_spy, monkeypatch):
    monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", 5 * 8 * 6 * 7 + 17)  # room for 5 frames
    data = stack(23, 6, 7)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("entry/data/data", data=data, chunks=(5, 6, 7), compression="gzip")
        chunks = list(iter_frame_chunks(ds))
        np.testing.assert_array_equal(np.concatenate(chunks), data)
        assert read_spy == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
        read_spy.clear()
        list(iter_frame_chunks(ds, start=7, stop=21))
        assert read_spy == [(7, 10), (10, 15), (15, 20), (20, 21)]
        read_spy.clear()
        monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", frames.DEFAULT_CHUNK_BYTES * 100)
        list(iter_frame_chunks(ds))
        assert read_spy == [(0, 23)]  # a small stack is one read


def test_chunked_dataset_groups_small_hdf5_chunks_within_the_budget(tmp_path, h5py, read_spy, monkeypatch):
    monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", 7 * 8 * 6 * 7)  # 7 frames of float64
    data = stack(20, 6, 7)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("d", data=data, chunks=(2, 3, 7))
        chunks = list(iter_frame_chunks(ds))
    assert sizes(chunks) == [6, 6, 6, 2]  # 3 whole HDF5 chunks of 2 frames fit in 7 frames
    assert max(stop - start for start, stop in read_spy) == 6


def test_contiguous_dataset_is_read_by_the_budget(tmp_path, h5py, read_spy, monkeypatch):
    monkeypatch.setattr(frames, "DEFAULT_CHUNK_BYTES", 4 * 8 * 6 * 7)
    data = stack(10, 6, 7, dtype=np.float32)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("d", data=data)
        assert ds.chunks is None
        chunks = list(iter_frame_chunks(ds))
    assert read_spy == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_array_equal(np.concatenate(chunks), data)


def test_dataset_validation(tmp_path, h5py):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        with pytest.raises(FrameSourceError, match=r"got shape \(4, 5\)"):
            iter_frame_chunks(f.create_dataset("flat", data=np.zeros((4, 5))))
        with pytest.raises(TypeError, match="not a real number type"):
            iter_frame_chunks(f.create_dataset("s", data=np.array([[[b"a"]]])))
        assert frame_count(f.create_dataset("ok", data=stack(6))) == 6
