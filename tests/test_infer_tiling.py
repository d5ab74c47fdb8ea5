"""Tiled inference: blend weights, reflection, tiled == untiled, and no seams at tile borders."""

import tracemalloc

import numpy as np
import pytest
import torch
from conftest import TINY_HAT

import segsr  # noqa: F401  (basicsr compat and registration)
from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.tiling import AxisPlan, reflect_indices, upscale_tiled


def tiny_edsr(scale: int) -> torch.nn.Module:
    """Receptive radius about 6 LR pixels: 5 LR convs and one HR conv."""
    from basicsr.archs import build_network  # after segsr has patched basicsr

    torch.manual_seed(0)
    options = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': scale}
    return build_network(options).eval()


def run_tiled(image: np.ndarray, network, scale: int, tile: int, overlap: int, batch: int = 1) -> np.ndarray:
    """Assemble the yielded blocks, checking that together they cover the output exactly once."""
    height, width = image.shape[1:]
    blocks = upscale_tiled(
        lambda r0, r1, c0, c1: image[:, r0:r1, c0:c1],
        height,
        width,
        network,
        scale=scale,
        tile=tile,
        overlap=overlap,
        batch=batch,
    )
    output, covered = None, np.zeros((height * scale, width * scale), dtype=int)
    for row, col, block in blocks:
        if output is None:
            output = np.zeros((block.shape[0], height * scale, width * scale), dtype=np.float32)
        output[:, row : row + block.shape[1], col : col + block.shape[2]] = block
        covered[row : row + block.shape[1], col : col + block.shape[2]] += 1
    assert (covered == 1).all(), 'blocks must cover the output once, without gaps'
    return output


@pytest.mark.parametrize(
    ('extent', 'tile', 'overlap', 'scale'), [(37, 16, 8, 2), (64, 16, 16, 3), (5, 16, 8, 4), (50, 7, 5, 1)]
)
def test_blend_weights_sum_to_one(extent, tile, overlap, scale):
    plan = AxisPlan.fit(extent, tile, overlap)
    total = np.zeros(extent * scale)
    for i in range(plan.count):
        low, high = plan.kept(i)
        total[low * scale : high * scale] += plan.weights(i, scale)
    np.testing.assert_allclose(total, 1, atol=1e-6)


@pytest.mark.parametrize('size', [1, 2, 7])
def test_reflect_indices_match_numpy_pad(size):
    pad = 20
    expected = np.pad(np.arange(size), pad, mode='reflect') if size > 1 else np.zeros(size + 2 * pad, int)
    np.testing.assert_array_equal(reflect_indices(-pad, size + pad, size), expected)


@pytest.mark.parametrize(('scale', 'tile', 'batch'), [(2, 16, 3), (3, 24, 1), (2, 100, 2)])
def test_tiled_equals_network_on_whole_scene(scale, tile, batch):
    """Receptive radius 6 <= overlap // 2 = 8: every kept pixel saw all the context it needs."""
    rng = np.random.default_rng(0)
    image = rng.random((3, 45, 70), dtype=np.float32)
    overlap = 16
    upscaler = TileUpscaler(tiny_edsr(scale), torch.device('cpu'), bf16=False, guidance=False)
    tiled = run_tiled(image, upscaler, scale, tile, overlap, batch)

    padded = np.pad(image, ((0, 0), (overlap, overlap), (overlap, overlap)), mode='reflect')
    whole = upscaler(padded[None])[0][:, overlap * scale : -overlap * scale, overlap * scale : -overlap * scale]
    assert tiled.shape == whole.shape == (3, 45 * scale, 70 * scale)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


class GloballyConditioned:
    """Each tile's output brightness follows the tile's own mean, as a global image embedding would."""

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        return tiles * (0.5 + tiles.mean(axis=(1, 2, 3), keepdims=True))


def smooth_scene(height: int, width: int) -> np.ndarray:
    """Low-frequency content whose local mean varies strongly from tile to tile."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = 0.5 + 0.4 * np.sin(x / 9) * np.cos(y / 13)
    return np.repeat(pattern[None], 3, axis=0)


def border_step(output: np.ndarray, tile: int, scale: int, overlap: int) -> float:
    """Mean absolute step across the middle of every band where two tiles meet (the cell border if no overlap)."""
    steps = []
    for axis in (1, 2):
        per_position = np.abs(np.diff(output, axis=axis)).mean(axis=tuple({0, 1, 2} - {axis}))
        middles = np.arange(tile * scale, output.shape[axis], tile * scale) + overlap // 2 * scale
        steps.append(per_position[middles - 1])
    return float(np.concatenate(steps).mean())


def seam_ratio(tiled: np.ndarray, untiled: np.ndarray, tile: int, scale: int, overlap: int) -> float:
    """Steps where tiles meet relative to the untiled output's steps at the same places (1 = no seam)."""
    return border_step(tiled, tile, scale, overlap) / border_step(untiled, tile, scale, overlap)


def test_feathering_removes_the_step_of_tile_dependent_conditioning():
    image = smooth_scene(96, 96)
    untiled = run_tiled(image, GloballyConditioned(), 1, tile=96, overlap=16)
    hard = run_tiled(image, GloballyConditioned(), 1, tile=24, overlap=0)
    feathered = run_tiled(image, GloballyConditioned(), 1, tile=24, overlap=16)
    assert seam_ratio(hard, untiled, 24, 1, 0) > 3, 'the metric must see the seam of unblended tiles'
    assert seam_ratio(feathered, untiled, 24, 1, 16) < 1.25


@pytest.fixture(scope='module')
def tiny_segsr(clip_file) -> torch.nn.Module:
    """SEGSR with a tiny random CLIP and HAT; the modulation is perturbed so guidance changes the image."""
    from basicsr.utils.registry import ARCH_REGISTRY  # after segsr has patched basicsr

    if 'SEGSR' not in ARCH_REGISTRY:
        pytest.skip('the SEGSR arch is not registered in this tree')
    from segsr.clip.tiny import TINY_CLIP_MODEL

    torch.manual_seed(0)
    network = ARCH_REGISTRY.get('SEGSR')(
        backbone={'type': 'HAT', **TINY_HAT},
        upscale=2,
        sfem={'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': {'rank': 4, 'alpha': 4, 'dropout': 0.0}},
        slm={'num_heads': 4},
        lmm={'hidden': 8},
    ).eval()
    with torch.no_grad():
        for parameter in network.lmm.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return network


def test_segsr_tiles_show_no_seam_in_image_or_guidance(tiny_segsr):
    """Each tile's CLIP sees a different window, so its guidance differs; blending must hide that."""
    upscaler = TileUpscaler(tiny_segsr, torch.device('cpu'), bf16=False, guidance=True)
    image = smooth_scene(96, 96)
    untiled = run_tiled(image, upscaler, 2, tile=96, overlap=16)
    hard = run_tiled(image, upscaler, 2, tile=24, overlap=0, batch=4)
    feathered = run_tiled(image, upscaler, 2, tile=24, overlap=16, batch=4)
    sr, maps = slice(0, 3), slice(3, None)
    assert feathered.shape == untiled.shape == (3 + upscaler.map_channels, 192, 192)
    assert seam_ratio(hard[maps], untiled[maps], 24, 2, 0) > 2, 'the metric must see the seam of unblended guidance'
    assert seam_ratio(feathered[sr], untiled[sr], 24, 2, 16) < 1.25
    assert seam_ratio(feathered[maps], untiled[maps], 24, 2, 16) < 1.25


def nearest_upscale(tiles: np.ndarray) -> np.ndarray:
    return tiles.repeat(2, axis=2).repeat(2, axis=3)


def peak_traced_bytes(height: int, width: int, tile: int = 16, overlap: int = 8) -> int:
    """Peak numpy memory while streaming a scene whose blocks are dropped as soon as they arrive."""
    image = np.random.default_rng(0).random((3, height, width), dtype=np.float32)
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    blocks = upscale_tiled(
        lambda r0, r1, c0, c1: image[:, r0:r1, c0:c1],
        height,
        width,
        nearest_upscale,
        scale=2,
        tile=tile,
        overlap=overlap,
        batch=2,
    )
    for _ in blocks:
        pass
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    return peak


def test_held_memory_follows_the_shorter_side_not_the_scene_length():
    square = peak_traced_bytes(64, 64)
    assert peak_traced_bytes(64, 1024) < 1.2 * square, 'a wide scene must hold no more than a square one'
    assert peak_traced_bytes(1024, 64) < 1.2 * square, 'a tall scene must hold no more than a square one'
    assert peak_traced_bytes(512, 512) > 1.5 * square, 'the metric must see the bands grow with the shorter side'


def test_a_cell_is_handed_out_as_soon_as_its_own_tile_has_run():
    calls = []

    def counting(tiles: np.ndarray) -> np.ndarray:
        calls.append(len(tiles))
        return nearest_upscale(tiles)

    image = np.zeros((3, 40, 100), dtype=np.float32)
    blocks = upscale_tiled(
        lambda r0, r1, c0, c1: image[:, r0:r1, c0:c1], 40, 100, counting, scale=2, tile=16, overlap=8, batch=3
    )
    for index, (row, col, _) in enumerate(blocks):
        assert len(calls) == index // 3 + 1, 'no tile may run before the cells already final are handed out'
        assert (row, col) == ((index % 3) * 32, (index // 3) * 32), 'a wide scene runs column by column'
