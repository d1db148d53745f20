import numpy as np
import pytest

from xpcs_adapters import MatplotlibAdapter


def _non_white_in_axes(fig, ax) -> int:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    height = rgba.shape[0]
    x0, y0, x1, y1 = (round(v) for v in ax.get_window_extent().extents)
    region = rgba[height - y1 + 2 : height - y0 - 2, x0 + 2 : x1 - 2, :3]  # inside the frame
    return int(np.count_nonzero((region < 250).any(axis=-1)))


def test_line_and_image_from_adapted_arrays(backend, plt):
    adapter = MatplotlibAdapter(enable_monitoring=True)
    tau = backend.logspace(-3.0, 1.0, 40)
    g2 = 1.0 + 0.3 * backend.exp(-2.0 * tau)
    frame = backend.reshape(backend.arange(400.0), (20, 20))

    x, y = adapter.to_matplotlib(tau, g2)
    image = adapter.to_matplotlib(frame)
    for out in (x, y, image):
        assert type(out) is np.ndarray
    assert adapter.get_stats()["conversions"] == 3

    fig, (ax_line, ax_image) = plt.subplots(1, 2, figsize=(6, 3), dpi=80)
    try:
        assert _non_white_in_axes(fig, ax_line) == 0  # empty axes are white inside
        (line,) = ax_line.semilogx(x, y, color="tab:blue")
        shown = ax_image.imshow(image, cmap="viridis")
        assert _non_white_in_axes(fig, ax_line) > 20
        assert _non_white_in_axes(fig, ax_image) > 1000
        assert type(line.get_xdata()) is np.ndarray
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(g2))
        np.testing.assert_array_equal(shown.get_array(), np.arange(400.0).reshape(20, 20))
    finally:
        plt.close(fig)


def test_one_argument_gives_the_array_several_give_a_tuple():
    adapter = MatplotlibAdapter()
    a = np.ones(3)
    assert adapter.to_matplotlib(a) is a
    pair = adapter.to_matplotlib(a, [1, 2])
    assert type(pair) is tuple
    assert len(pair) == 2
    assert pair[0] is a
    with pytest.raises(TypeError, match="at least one array"):
        adapter.to_matplotlib()


def test_bad_input_never_reaches_matplotlib():
    with pytest.raises(TypeError, match="ensure_numpy"):
        MatplotlibAdapter().to_matplotlib(np.ones(3), None)
