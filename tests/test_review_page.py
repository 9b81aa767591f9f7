"""The review page as a reviewer's browser draws it (headless Chromium): the heatmap keeps its shape
beside a tall gallery of top tiles, and the page asks nothing of the network."""
import io, os, shutil

import numpy as np, pandas as pd, pytest
from PIL import Image

from cervix_nb.screen import review_html

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
needs_chromium = pytest.mark.skipif(not CHROMIUM and os.environ.get('CI', '').lower() != 'true',
                                    reason='Chromium not installed (Debian: apt-get install chromium)')


def _page(tmp_path, heat_wh=(300, 400), n_top=22):
    "A review page of a heatmap `heat_wh` px (a portrait one, as a 2,220 x 2,967 px slide's) and 22 tiles."
    buf = io.BytesIO(); Image.new('RGB', heat_wh, (200, 40, 40)).save(buf, 'PNG')
    top = pd.DataFrame(dict(rank=range(1, n_top + 1), x=0, y=0, size0=512, score=0.5))
    imgs = np.full((n_top, 128, 128, 3), 230, np.uint8)
    boxes = pd.DataFrame(columns=['rank', 'tx0', 'ty0', 'tx1', 'ty1'])
    decision = dict(decision='abnormal', reason='r', selected_tiles=52, grid_tiles=60, flagged_tiles=47)
    p = tmp_path/'review.html'; p.write_text(review_html('S', decision, buf.getvalue(), top, imgs, boxes))
    return p


@needs_chromium
@pytest.mark.parametrize('heat_wh', [(300, 400), (600, 200)])
def test_heatmap_keeps_its_aspect_ratio(tmp_path, heat_wh):
    from playwright.sync_api import sync_playwright
    page_file, asked = _page(tmp_path, heat_wh), []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox', '--disable-gpu'])
        ctx = browser.new_context(viewport={'width': 1280, 'height': 900})
        ctx.route('**/*', lambda r: r.continue_() if r.request.url.startswith(('file:', 'data:'))
                  else (asked.append(r.request.url), r.abort()))
        page = ctx.new_page(); page.goto(page_file.as_uri(), wait_until='load')
        box = page.evaluate("(() => { const r = document.querySelector('img[alt=heatmap]')"
                            ".getBoundingClientRect(); return [r.width, r.height]; })()")
        gallery = page.evaluate("document.querySelector('.grid').getBoundingClientRect().height")
        page.screenshot(path=str(tmp_path/'review.png')); browser.close()
    w, h = box
    assert gallery > 1.5 * h, (gallery, h)  # the gallery is the taller column: what stretched the map
    assert abs((w / h) / (heat_wh[0] / heat_wh[1]) - 1) < 0.02, (box, heat_wh)
    assert w <= 0.45 * 1280 + 1, box  # beside the gallery, at most 45% of the page
    assert not asked, asked
