"""The checks before the decision (04c_quality), end to end through `cervix-screen`: with a checkpoint that
carries its training tiles' statistics, a held-out smear of the training kind passes all four, and a real H&E
tissue section (CMU-1-Small-Region.svs, which `conftest.cmu` caches) warns in report.json, in the terminal
and on the review page, without its decision changing; with --strict it is unsatisfactory."""
import json, subprocess, sys
from pathlib import Path

import numpy as np, pandas as pd, pytest, torch

BIN = Path(sys.executable).parent
SIDE, TILE = 4096, 128


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> tuple:
    """(checkpoint, held-out smear): a model that calls every tile normal (so plausibility never warns),
    with the statistics of three generated normal smears' selected tiles; a fourth smear held out."""
    from cervix_nb.core import get_scale
    from cervix_nb.herlev import RegressionConstraint
    from cervix_nb.baselines import make_tile_model
    from cervix_nb.wsi import Slide, read_at, write_slide
    from cervix_nb.cohort import SmearScene
    from cervix_nb.clinical import save_checkpoint, select_tiles
    from cervix_nb.quality import quality_reference, tiles_features
    d = tmp_path_factory.mktemp('quality')
    feats, ids = [], []
    for k in range(4):
        p = write_slide(d/f'N{k}.svs', SmearScene(SIDE, SIDE, seed=60 + k).render, SIDE, SIDE)
        if k == 3: break  # the held-out smear
        with Slide(p) as s:
            g = select_tiles(s, TILE)
            x = np.stack([read_at(s, r.x, r.y, TILE) for r in g[g.selected].itertuples()])
        feats.append(tiles_features(x)); ids += [f'N{k}'] * len(x)
    ref = quality_reference(pd.concat(feats, ignore_index=True), ids, np.zeros(len(ids), int))
    rc = RegressionConstraint((0, 1)); net = make_tile_model(rc, get_scale('quick'))
    with torch.no_grad(): net.head.weight.zero_(); net.head.bias.copy_(torch.tensor([6.0, -6.0]))
    return save_checkpoint(d/'m.pt', net, rc, 'tiny_resnet', TILE, 10, extra=dict(quality=ref)), p


def screen(slide, ck, out:Path, *more) -> tuple:
    "(terminal output, report) of `cervix-screen` on one slide."
    r = subprocess.run([str(BIN/'cervix-screen'), str(slide), '--model', str(ck), '--out', str(out), '--top', '2',
                        '--ig_steps', '2', '--workers', '0', '--device', 'cpu', *more], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, json.loads((out/Path(slide).stem/'report.json').read_text())


def test_a_held_out_smear_of_the_training_kind_passes(model, tmp_path):
    ck, held = model
    said, rep = screen(held, ck, tmp_path)
    q = rep['quality']
    assert q['warnings'] == [] and q['reference'], q
    assert [c['status'] for c in q['checks'].values()] == ['pass'] * 4, q
    assert 'QUALITY' not in said and rep['decision'] == 'normal'
    assert 'Quality warnings' not in (tmp_path/held.stem/'review.html').read_text()


def test_an_he_section_warns_and_strict_makes_it_unsatisfactory(model, cmu, tmp_path):
    ck, _ = model
    said, rep = screen(cmu, ck, tmp_path/'plain')
    q = rep['quality']
    assert 'domain' in q['warnings'] and q['checks']['domain']['value'] > q['checks']['domain']['threshold'], q
    assert 'QUALITY WARNINGS: domain' in said, said
    assert rep['decision'] == 'normal'  # a warning alone never changes the decision
    page = (tmp_path/'plain'/cmu.stem/'review.html').read_text()
    assert 'Quality warnings: ' in page and '<td class="warn">warn</td>' in page
    said, strict = screen(cmu, ck, tmp_path/'strict', '--strict', '--preparation', 'liquid')
    assert (strict['decision'], strict['count_rule_decision']) == ('unsatisfactory', 'normal'), strict['reason']
    assert strict['reason'].startswith('unsatisfactory for evaluation (strict): ') and 'unlike the training' in strict['reason']
    assert strict['quality']['checks']['adequacy']['preparation'] == 'liquid'
    assert said.startswith('CMU-1-Small-Region: UNSATISFACTORY')
