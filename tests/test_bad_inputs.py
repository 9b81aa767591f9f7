"Bad input gets a clear error naming the file and what is wrong, or a documented outcome; each case asserts its message."
import json
from pathlib import Path

import numpy as np, pandas as pd, pytest, tifffile, torch
from PIL import Image

from cervix_nb.core import CervixError, get_scale, seed_everything
from cervix_nb.herlev import HERLEV_CLASSES, RegressionConstraint, herlev_index, read_cell
from cervix_nb.baselines import make_tile_model
from cervix_nb.wsi import Slide, read_at, tile_grid, write_slide
from cervix_nb.clinical import binary_metrics, load_checkpoint, save_checkpoint
from cervix_nb.cohort import read_points
from cervix_nb.screen import ScreenSettings, screen_slide
from cervix_nb.slides import segmentation_metrics
from cervix_nb.cli import cohort_slides, screening_model


def fails(f, *parts):
    "Call f; it must raise CervixError or ValueError whose message holds every part."
    with pytest.raises((CervixError, ValueError)) as e: f()
    for p in parts: assert p in str(e.value), str(e.value)
    return str(e.value)


def _cell(p, size=(10, 10), mode='RGB'):
    Image.new(mode, size, 128 if mode == 'L' else (200, 100, 50, 255)[:len(mode)]).save(p)
    return p


# Herlev folders and cell images
def test_path_that_does_not_exist(tmp_path):
    fails(lambda: herlev_index(tmp_path/'nowhere'), 'nowhere', 'Herlev folder not found')
    fails(lambda: Slide(tmp_path/'nowhere.svs'), 'nowhere.svs', 'slide not found')

def test_empty_herlev_folder(tmp_path):
    fails(lambda: herlev_index(tmp_path), 'missing class folders')

def test_unknown_class_folder(tmp_path):
    for c in HERLEV_CLASSES + ('holiday_photos',): (tmp_path/c).mkdir()
    fails(lambda: herlev_index(tmp_path), 'holiday_photos', 'unknown class folder')

def test_image_without_its_mask(tmp_path):
    for c in HERLEV_CLASSES: (tmp_path/c).mkdir(); _cell(tmp_path/c/'a.bmp'); _cell(tmp_path/c/'a-d.bmp')
    _cell(tmp_path/HERLEV_CLASSES[0]/'b.bmp')
    fails(lambda: herlev_index(tmp_path), 'b.bmp', 'no segmentation image b-d.bmp beside it')

def test_mask_of_another_size(tmp_path):
    fails(lambda: read_cell(_cell(tmp_path/'a.bmp'), _cell(tmp_path/'a-d.bmp', (12, 10))), 'a-d.bmp', 'segmentation image is 12x10 but its cell image is 10x10')

def test_truncated_and_zero_byte_bmp(tmp_path):
    full = _cell(tmp_path/'full.bmp', (40, 40)).read_bytes()
    (tmp_path/'cut.bmp').write_bytes(full[:60])
    fails(lambda: read_cell(tmp_path/'cut.bmp'), 'cut.bmp', 'unreadable cell image')
    (tmp_path/'zero.bmp').write_bytes(b'')
    fails(lambda: read_cell(tmp_path/'zero.bmp'), 'zero.bmp', 'cell image is empty (0 bytes)')

def test_non_image_with_an_image_extension(tmp_path):
    (tmp_path/'notes.bmp').write_text('not an image')
    fails(lambda: read_cell(tmp_path/'notes.bmp'), 'notes.bmp', 'unreadable cell image')

def test_grey_and_rgba_cells_are_read_as_rgb(tmp_path):
    for mode in ('L', 'RGBA'):
        img, _, _ = read_cell(_cell(tmp_path/f'{mode}.png', mode=mode))
        assert img.shape == (10, 10, 3) and img.dtype == np.uint8


# Slides
def test_zero_byte_slide(tmp_path):
    (tmp_path/'zero.svs').write_bytes(b'')
    fails(lambda: Slide(tmp_path/'zero.svs'), 'zero.svs', 'slide is empty (0 bytes)')

def test_text_file_named_svs(tmp_path):
    (tmp_path/'text.svs').write_text('this is not a slide\n' * 10)
    fails(lambda: Slide(tmp_path/'text.svs'), 'text.svs', 'not a slide tiffslide can read')

def test_single_level_tiff(tmp_path):
    "Handled as a one-level pyramid; without pixel size or objective power the magnification must be given."
    img = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path/'flat.tif', img)
    with Slide(tmp_path/'flat.tif') as s:
        assert s.level_count == 1 and s.dimensions == (800, 600)
        fails(lambda: s.scan_power, 'flat.tif', '--magnification 40 on the command line')
    with Slide(tmp_path/'flat.tif', magnification=40) as s:
        assert (read_at(s, 400, 200, 100, mag=40) == img[200:300, 400:500]).all()

def test_tile_larger_than_the_slide():
    fails(lambda: tile_grid(300, 200, 512), 'tile size 512 is larger than the slide')

def test_slide_without_tissue_is_inadequate(tmp_path):
    p = write_slide(tmp_path/'glass.svs', lambda x0, y0, w, h: np.full((h, w, 3), 236, np.uint8), 1024, 1024)
    rc = RegressionConstraint((0, 1)); seed_everything(0)
    rep = screen_slide(p, make_tile_model(rc, get_scale('quick')), rc, tmp_path/'out'/'glass',
                      ScreenSettings(tile=64, workers=0, device='cpu'))
    assert (rep['decision'], rep['selected_tiles'], rep['top_tiles']) == ('inadequate', 0, [])
    assert rep['reason'] == 'no tile selected: no sample found on the slide'
    assert json.loads((tmp_path/'out'/'glass'/'report.json').read_text())['decision'] == 'inadequate'


# Annotations and tables
def test_malformed_geojson(tmp_path):
    (tmp_path/'a.geojson').write_text('{"type": "FeatureCollection", "features": [')
    fails(lambda: read_points(tmp_path/'a.geojson'), 'a.geojson', 'not valid GeoJSON')
    (tmp_path/'b.geojson').write_text('{"type": "Feature"}')
    fails(lambda: read_points(tmp_path/'b.geojson'), 'b.geojson', 'not a GeoJSON FeatureCollection')

def test_annotation_outside_the_slide(tmp_path):
    pt = dict(type='Feature', geometry=dict(type='Point', coordinates=[150, 5]), properties={})
    (tmp_path/'p.geojson').write_text(json.dumps(dict(type='FeatureCollection', features=[pt])))
    fails(lambda: read_points(tmp_path/'p.geojson', (100, 100)), 'p.geojson', 'feature 0 at (150, 5) lies outside the slide (100x100)')

def test_slides_table_missing_column_duplicate_id_and_unsafe_id(tmp_path):
    pd.DataFrame(dict(slide_id=['a'], file=['a.svs'])).to_csv(tmp_path/'t1.csv', index=False)
    fails(lambda: cohort_slides(tmp_path/'t1.csv'), 't1.csv', "lacks column(s) ['path']")
    pd.DataFrame(dict(slide_id=['a', 'a'], path=['a.svs', 'b.svs'])).to_csv(tmp_path/'t2.csv', index=False)
    fails(lambda: cohort_slides(tmp_path/'t2.csv'), 't2.csv', "slide id(s) ['a'] appear more than once")
    pd.DataFrame(dict(slide_id=['../../x'], path=['a.svs'])).to_csv(tmp_path/'t3.csv', index=False)
    fails(lambda: cohort_slides(tmp_path/'t3.csv'), 't3.csv', "slide id '../../x' cannot name an output folder")


# Checkpoints and outputs
def test_checkpoint_for_another_head_or_class_count(tmp_path):
    five = RegressionConstraint((1, 2, 3, 4, 5)); seed_everything(0)
    p = save_checkpoint(tmp_path/'five.pt', make_tile_model(five, get_scale('quick')), five, 'tiny_resnet', 64, 10, classes=tuple('abcde'))
    assert load_checkpoint(p)[2]['n_out'] == 5                                       # a valid checkpoint...
    fails(lambda: screening_model(p), 'five.pt', "checkpoint has 5 classes", "screening needs §5.1's binary tile classifier")  # ...not for screening
    ck = torch.load(p, weights_only=True); ck['meta']['head'] = 'OrdinalRegression'; torch.save(ck, tmp_path/'ordinal.pt')
    fails(lambda: load_checkpoint(tmp_path/'ordinal.pt'), 'ordinal.pt', "head 'OrdinalRegression' is not a tile-classifier head")
    ck['meta']['head'], ck['meta']['n_out'] = 'Classifier', 2; torch.save(ck, tmp_path/'cls.pt')   # the head has 5 outputs, 2 announced
    fails(lambda: load_checkpoint(tmp_path/'cls.pt'), 'cls.pt', 'head Classifier has 5 outputs, the checkpoint 2')
    ck['meta']['head'], ck['meta']['w_r'] = 'RegressionConstraint', [0.0, 1.0]; torch.save(ck, tmp_path/'two.pt')  # weights of 5 outputs
    fails(lambda: load_checkpoint(tmp_path/'two.pt'), 'two.pt', 'weights do not fit a tiny_resnet with 2 outputs')

def test_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path/'weights.pt').write_bytes(b'\x80\x04junk')
    fails(lambda: load_checkpoint(tmp_path/'weights.pt'), 'weights.pt', 'not a checkpoint torch can load safely')

def test_output_folder_that_cannot_be_written(tmp_path):
    p = write_slide(tmp_path/'glass.svs', lambda x0, y0, w, h: np.full((h, w, 3), 236, np.uint8), 1024, 1024)
    (tmp_path/'a_file').write_text('x')
    rc = RegressionConstraint((0, 1))
    fails(lambda: screen_slide(p, make_tile_model(rc, get_scale('quick')), rc, tmp_path/'a_file'/'out'/'glass',
                               ScreenSettings(tile=64, workers=0, device='cpu')),
          'a_file', 'output folder cannot be created or written (Not a directory)')


# Metrics
def test_nan_or_infinite_values_reaching_the_metrics():
    fails(lambda: binary_metrics([0, 1, 1], [0.1, float('nan'), 0.9]), 'tile scores contain NaN or infinite values')
    fails(lambda: binary_metrics([0, 1, 1], [0.1, float('inf'), 0.9]), 'tile scores contain NaN or infinite values')


def test_slide_cut_short_in_screen_and_cohort(tmp_path):
    "A copy of a slide cut short: one line naming the file and the region; nothing written; in a cohort, that slide failed."
    import subprocess, sys
    from cervix_nb.cohort import SmearScene
    from cervix_nb.cli import screen_cohort
    rc = RegressionConstraint((0, 1)); seed_everything(0)
    ck = save_checkpoint(tmp_path/'m.pt', make_tile_model(rc, get_scale('quick')), rc, 'tiny_resnet', 64, 10)
    (tmp_path/'slides').mkdir()
    good = write_slide(tmp_path/'slides'/'good.svs', SmearScene(2048, 2048, seed=1, abnormal_share=0.3).render, 2048, 2048)
    data = good.read_bytes(); cut = tmp_path/'slides'/'cut.svs'; cut.write_bytes(data[:len(data) * 6 // 10])
    opts = ['--device', 'cpu', '--workers', '0', '--top', '2', '--ig_steps', '2']
    r = subprocess.run([str(Path(sys.executable).parent/'cervix-screen'), str(cut), '--model', str(ck),
                        '--out', str(tmp_path/'out'), *opts], capture_output=True, text=True)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    said = [l for l in r.stderr.splitlines() if l.strip() and '%|' not in l]   # progress bars aside
    assert len(said) == 1, r.stderr                                                # one line
    assert 'cut.svs: cannot decode the region' in said[0] and 'cut short or damaged' in said[0]
    assert not (tmp_path/'out').exists() or not any((tmp_path/'out').iterdir())   # nothing written
    df = screen_cohort(tmp_path/'slides', ck, tmp_path/'cohort', n_workers=1, progress=False,
                       given=dict(top=2, ig_steps=2, device='cpu')).set_index('slide_id')
    assert df.status.to_dict() == {'cut': 'failed', 'good': 'done'}, df.error.to_dict()
    assert 'cut.svs: cannot decode the region' in df.error['cut']
