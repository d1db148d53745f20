import numpy as np
import pytest

from xpcs_adapters import PyQtGraphAdapter
from xpcs_device import array_backend_name


def _pixels(pg, qimage) -> np.ndarray:
    """A QImage as an (h, w, 4) RGBA uint8 array."""
    rgba = qimage.convertToFormat(pg.QtGui.QImage.Format.Format_RGBA8888)
    return pg.functions.ndarray_from_qimage(rgba).copy()


def _red_pixels(rgba: np.ndarray) -> int:
    r, g, b = (rgba[..., i].astype(int) for i in range(3))
    return int(np.count_nonzero((r > 180) & (g < 80) & (b < 80)))


def test_image_item_gets_numpy_and_renders(backend, pg):
    data = np.arange(48.0).reshape(6, 8) ** 1.5
    adapter = PyQtGraphAdapter()
    image = adapter.to_pyqtgraph(backend.asarray(data))
    assert type(image) is np.ndarray

    item = pg.ImageItem()
    item.setImage(image)
    assert type(item.image) is np.ndarray
    np.testing.assert_array_equal(item.image, data)
    item.render()
    assert item.qimage is not None
    assert not item.qimage.isNull()
    assert (item.qimage.width(), item.qimage.height()) == (6, 8)  # pyqtgraph: axis 0 is x
    pixels = _pixels(pg, item.qimage)
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 10  # a gradient, not a blank

    back = adapter.from_pyqtgraph(item.image)
    assert array_backend_name(back) == backend.name
    np.testing.assert_array_equal(np.asarray(back), data)


def test_plot_data_item_gets_numpy_and_draws(backend, pg):
    x_np = np.linspace(0.0, 1.0, 64)
    y_np = np.sin(6.0 * x_np)
    adapter = PyQtGraphAdapter(enable_monitoring=True)
    x, y = adapter.to_pyqtgraph(backend.asarray(x_np)), adapter.to_pyqtgraph(backend.asarray(y_np))
    assert type(x) is np.ndarray
    assert type(y) is np.ndarray

    widget = pg.PlotWidget()
    widget.setBackground("w")
    widget.resize(240, 180)
    empty = _pixels(pg, widget.grab().toImage())
    item = widget.plot(x, y, pen=pg.mkPen((255, 0, 0), width=3))
    assert isinstance(item, pg.PlotDataItem)
    got_x, got_y = item.getData()
    assert type(got_x) is np.ndarray
    assert type(got_y) is np.ndarray
    np.testing.assert_array_equal(got_x, x_np)
    np.testing.assert_array_equal(got_y, y_np)

    pg.mkQApp().processEvents()
    drawn = _pixels(pg, widget.grab().toImage())
    widget.close()
    assert _red_pixels(empty) == 0
    assert _red_pixels(drawn) > 50  # the curve was drawn

    back = adapter.from_pyqtgraph(got_y)
    assert array_backend_name(back) == backend.name
    assert adapter.get_stats()["conversions"] == 3


def test_image_in_a_layout_widget_renders(backend, pg):
    adapter = PyQtGraphAdapter()
    frame = backend.reshape(backend.arange(32.0 * 32.0), (32, 32))
    layout = pg.GraphicsLayoutWidget()
    layout.resize(160, 160)
    layout.setBackground("k")
    view = layout.addViewBox()
    view.addItem(pg.ImageItem(adapter.to_pyqtgraph(frame)))
    pg.mkQApp().processEvents()
    pixels = _pixels(pg, layout.grab().toImage())
    layout.close()
    assert np.count_nonzero(pixels[..., :3].max(axis=-1) > 40) > 1000  # not just black


def test_read_only_views_are_enough_for_pyqtgraph(jax_backend, pg):
    x = jax_backend.reshape(jax_backend.linspace(0.0, 1.0, 100), (10, 10))
    image = PyQtGraphAdapter().to_pyqtgraph(x)
    assert not image.flags.writeable
    item = pg.ImageItem()
    item.setImage(image, levels=(0.0, 1.0))
    item.render()
    assert not item.qimage.isNull()


@pytest.mark.parametrize("bad", [None, [[1.0], [1.0, 2.0]]], ids=["none", "ragged"])
def test_bad_input_never_reaches_pyqtgraph(bad):
    with pytest.raises(TypeError, match="ensure_numpy"):
        PyQtGraphAdapter().to_pyqtgraph(bad)
