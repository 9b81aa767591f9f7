"""The whole-slide viewer of the review page (04d_viewer, written by 05b's `screen_slide`) in headless Chromium,
opened from the file system: the slide's pyramid renders, the heatmap layer and the candidate boxes lie over it,
clicking a gallery card zooms in and loads the finest tiles, and nothing is asked of the network. Screenshots
are kept in data/outputs/test_viewer/."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path

import pytest

from cervix_nb.core import data_dir

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
needs_chromium = pytest.mark.skipif(not CHROMIUM and os.environ.get('CI', '').lower() != 'true',
                                    reason='Chromium not installed (Debian: apt-get install chromium)')
BIN = Path(sys.executable).parent


@pytest.fixture(scope='module')
def screened(tmp_path_factory) -> Path:
    "The output folder of a generated abnormal smear screened by `cervix-screen` (an untrained model)."
    from cervix_nb.core import get_scale, seed_everything
    from cervix_nb.herlev import RegressionConstraint
    from cervix_nb.baselines import make_tile_model
    from cervix_nb.wsi import write_slide
    from cervix_nb.cohort import SmearScene
    from cervix_nb.clinical import save_checkpoint
    d = tmp_path_factory.mktemp('viewer')
    p = write_slide(d/'S.svs', SmearScene(4096, 3072, seed=8, abnormal_share=0.3).render, 4096, 3072)
    rc = RegressionConstraint((0, 1)); seed_everything(0)
    ck = save_checkpoint(d/'m.pt', make_tile_model(rc, get_scale('quick')), rc, 'tiny_resnet', 128, 10)
    r = subprocess.run([str(BIN/'cervix-screen'), str(p), '--model', str(ck), '--out', str(d/'out'), '--top', '4',
                        '--ig_steps', '2', '--workers', '0', '--device', 'cpu'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return d/'out'/'S'


def test_the_pyramid_is_written_beside_the_page(screened):
    rep = json.loads((screened/'report.json').read_text())
    assert 'viewer' in rep['outputs'] and rep['seconds']['viewer'] > 0
    levels = sorted(int(p.name) for p in (screened/'viewer').iterdir() if p.name.isdigit())
    assert levels[-1] == 12 and len(list((screened/'viewer'/'12').glob('*.jpg'))) == 16 * 12  # 4,096 x 3,072 px


@needs_chromium
def test_the_viewer_renders_overlays_and_zooms_from_file(screened):
    from playwright.sync_api import sync_playwright
    rep = json.loads((screened/'report.json').read_text())
    shots, asked = data_dir()/'outputs'/'test_viewer', []
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox', '--disable-gpu'])
        ctx = browser.new_context(viewport={'width': 1280, 'height': 1000})
        ctx.route('**/*', lambda r: r.continue_() if r.request.url.startswith(('file:', 'data:'))
                  else (asked.append(r.request.url), r.abort()))
        page = ctx.new_page(); errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto((screened/'review.html').as_uri(), wait_until='load')
        page.wait_for_function('window.cervixHeat && window.cervixViewer.world.getItemCount() == 2', timeout=20000)
        page.wait_for_function('window.cervixViewer.world.getItemAt(0).getFullyLoaded()', timeout=20000)
        first = page.evaluate('Math.max(...window.cervixLevels)')
        overlays = page.evaluate("document.querySelectorAll('#viewer .osd-box').length")
        page.locator('#viewer').screenshot(path=str(shots/'viewer-whole-slide.png'))
        page.locator('#heat-opacity').fill('10')  # a range input: fill sets it and fires 'input'
        opacity = page.evaluate('window.cervixHeat.getOpacity()')
        zoom = page.evaluate('window.cervixViewer.viewport.getZoom()')
        page.locator('figure.zoom-to').first.click()
        page.wait_for_function(f'window.cervixViewer.viewport.getZoom() > 4 * {zoom}', timeout=20000)
        time.sleep(2)  # the zoom animation ends; then the finer tiles it asks for
        page.wait_for_function('window.cervixViewer.world.getItemAt(0).getFullyLoaded()', timeout=20000)
        finest = page.evaluate('Math.max(...window.cervixLevels)')
        page.locator('#viewer').screenshot(path=str(shots/'viewer-zoomed-to-top-tile.png'))
        browser.close()
    assert not errors, errors
    assert overlays == rep['candidate_boxes'] > 0, (overlays, rep['candidate_boxes'])
    assert abs(opacity - 0.1) < 1e-6, opacity
    assert first < 12 and finest == 12, (first, finest)  # the whole slide at a coarse level; the tile at level 12
    assert not asked, asked
