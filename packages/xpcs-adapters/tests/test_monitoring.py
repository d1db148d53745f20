import threading

import numpy as np
import pytest

from xpcs_adapters import ConversionStats, HDF5Adapter, MatplotlibAdapter, PyQtGraphAdapter

ADAPTERS = [
    (PyQtGraphAdapter, "to_pyqtgraph", "from_pyqtgraph"),
    (HDF5Adapter, "to_hdf5", "from_hdf5"),
    (MatplotlibAdapter, "to_matplotlib", None),
]
KEYS = {
    "adapter",
    "monitoring",
    "conversions",
    "total_time_s",
    "average_time_s",
    "slowest_time_s",
    "slowest_shape",
}


@pytest.mark.parametrize(("cls", "to", "back"), ADAPTERS, ids=[c[0].__name__ for c in ADAPTERS])
def test_counts_averages_and_slowest_shape(backend, cls, to, back):
    adapter = cls(enable_monitoring=True)
    assert adapter.monitoring_enabled
    shapes = [(3,), (4, 5), (512, 512), (2, 2)]
    for shape in shapes:
        getattr(adapter, to)(backend.ones(shape))
    if back is not None:
        restored = getattr(adapter, back)(np.ones((6, 7)))
        assert restored.shape == (6, 7)
    stats = adapter.get_stats()
    assert type(stats) is dict
    assert set(stats) == KEYS
    assert stats["adapter"] == cls.__name__
    assert stats["monitoring"] is True
    expected = len(shapes) + (back is not None)
    assert stats["conversions"] == expected
    assert stats["total_time_s"] > 0.0
    assert stats["average_time_s"] == pytest.approx(stats["total_time_s"] / expected)
    assert 0.0 < stats["slowest_time_s"] <= stats["total_time_s"]
    assert stats["slowest_time_s"] >= stats["average_time_s"]
    assert stats["slowest_shape"] in [*shapes, (6, 7)]

    adapter.reset_stats()
    assert adapter.get_stats() == {
        "adapter": cls.__name__,
        "monitoring": True,
        "conversions": 0,
        "total_time_s": 0.0,
        "average_time_s": 0.0,
        "slowest_time_s": 0.0,
        "slowest_shape": None,
    }
    getattr(adapter, to)(backend.ones((8, 9)))
    assert adapter.get_stats()["conversions"] == 1
    assert adapter.get_stats()["slowest_shape"] == (8, 9)


def test_slowest_conversion_is_the_one_recorded():
    stats = ConversionStats()
    for seconds, shape in [(0.002, (1,)), (0.009, (30, 40)), (0.001, (5,))]:
        stats.record(seconds, shape)
    snap = stats.snapshot("X", monitoring=True)
    assert snap["conversions"] == 3
    assert snap["total_time_s"] == pytest.approx(0.012)
    assert snap["average_time_s"] == pytest.approx(0.004)
    assert snap["slowest_time_s"] == 0.009
    assert snap["slowest_shape"] == (30, 40)


def test_each_array_of_to_matplotlib_is_one_conversion():
    adapter = MatplotlibAdapter(enable_monitoring=True)
    adapter.to_matplotlib(np.ones(3), np.ones((2, 4)), [1.0, 2.0])
    assert adapter.get_stats()["conversions"] == 3


def test_adapters_keep_separate_statistics():
    qt, h5 = PyQtGraphAdapter(enable_monitoring=True), HDF5Adapter(enable_monitoring=True)
    qt.to_pyqtgraph(np.ones(2))
    assert (qt.get_stats()["conversions"], h5.get_stats()["conversions"]) == (1, 0)


def test_failed_conversions_are_not_counted():
    adapter = HDF5Adapter(enable_monitoring=True)
    with pytest.raises(TypeError):
        adapter.to_hdf5(None)
    assert adapter.get_stats()["conversions"] == 0


@pytest.mark.parametrize(("cls", "to", "back"), ADAPTERS, ids=[c[0].__name__ for c in ADAPTERS])
def test_monitoring_off_records_nothing(cls, to, back):
    adapter = cls()
    assert not adapter.monitoring_enabled
    for _ in range(5):
        getattr(adapter, to)(np.ones((3, 3)))
    stats = adapter.get_stats()
    assert stats["monitoring"] is False
    assert stats["conversions"] == 0
    assert stats["total_time_s"] == 0.0
    assert stats["slowest_shape"] is None


def test_thread_safe_counting(backend):
    adapter = PyQtGraphAdapter(enable_monitoring=True)
    data = [backend.ones((4, 4)), np.ones(7)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for i in range(500):
                out = adapter.to_pyqtgraph(data[i % 2])
                assert type(out) is np.ndarray
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = adapter.get_stats()
    assert stats["conversions"] == 4000
    assert stats["average_time_s"] == pytest.approx(stats["total_time_s"] / 4000)
    assert stats["slowest_shape"] in [(4, 4), (7,)]
