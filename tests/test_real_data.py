"Real-data formats a user brings: a Herlev copy without segmentation images, and re-saved (lossy) ones."
import json, os, subprocess, sys
from pathlib import Path

import numpy as np, pandas as pd
from PIL import Image

BIN = Path(sys.executable).parent


def _jpeg_copy(src: Path, dst: Path, upper: bool = False):
    "smear2005's circulating JPEG copies: the cell images only, no `-d.bmp`."
    for p in src.rglob('*.BMP'):
        out = dst/p.parent.name/(p.stem + ('.JPG' if upper else '.jpg'))
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(p).convert('RGB').save(out, quality=90)


def _printed(nb: Path) -> str:
    "Everything the cells of an executed notebook printed."
    cells = json.loads(nb.read_text())['cells']
    return '\n'.join(''.join(o.get('text', '')) for c in cells for o in c.get('outputs', []))


def test_mask_free_herlev_copy_runs_sections_3_and_4_1(tmp_path):
    "A JPEG copy without masks in data/herlev: §3 classifies and skips Fig. 3, §4.1 takes synthetic cells."
    from cervix_nb.herlev import write_synthetic_herlev, herlev_counts
    data = tmp_path/'data'
    cells = write_synthetic_herlev(tmp_path/'src', counts=herlev_counts(140), seed=3)
    _jpeg_copy(cells, data/'herlev', upper=True)
    env = {**os.environ, 'CERVIX_DATA': str(data), 'CERVIX_SCALE': 'tiny'}  # plumbing: the sections run through
    r = subprocess.run([str(BIN/'cervix-reproduce'), '--sections', '01_herlev,02_tiles', '--out', str(tmp_path/'run')],
                       capture_output=True, text=True, env=env, timeout=1500)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    said = _printed(tmp_path/'run'/'01_herlev'/'01_herlev.ipynb')    # what the executed notebook printed
    assert 'Herlev: real copy at' in said and 'no segmentation images: classification only' in said
    assert 'Fig. 3 is skipped' in said
    res = pd.read_csv(tmp_path/'run'/'01_herlev'/'results.csv')
    assert set(res.data) == {'real'} and len(res) > 3                 # classification ran on the real copy
    tileset = json.loads(next((data/'synthetic').glob('tiles-*/TILESET.json')).read_text())
    assert tileset['cells_from'] == 'synthetic cells (the real Herlev copy has no segmentation images)'
    tiles = pd.read_csv(tmp_path/'run'/'02_tiles'/'results.csv')
    assert set(tiles.data) == {'synthetic'} and tiles.note.str.contains('synthetic cells').any()


def test_resaved_lossy_masks_decode_within_tolerance(tmp_path):
    "Segmentation images re-saved through JPEG still read, nuclei within a pixel or two of the originals."
    from cervix_nb.herlev import herlev_index, read_cell, write_synthetic_herlev
    root = write_synthetic_herlev(tmp_path/'h', counts=(2,) * 7, seed=5)
    idx = herlev_index(root)
    before = [read_cell(r.image, r.mask)[1:] for r in idx.itertuples()]
    for p in root.rglob('*-d.bmp'):
        Image.open(p).save(tmp_path/'x.jpg', quality=85)
        Image.open(tmp_path/'x.jpg').save(p)                          # a lossy round trip, kept as BMP
    from scipy import ndimage
    got = [read_cell(r.image, r.mask)[1:] for r in herlev_index(root).itertuples()]
    for g, b in zip(got, before):
        for region in (0, 1):                                         # nucleus, cytoplasm
            edge = ndimage.binary_dilation(b[region], iterations=2) & ~ndimage.binary_erosion(b[region], iterations=2)
            changed = g[region] ^ b[region]
            assert not (changed & ~edge).any(), 'a pixel more than 2 px from the original boundary changed'
            assert changed.sum() < 0.5 * edge.sum()                   # and only some of those near it
