"The screening commands end to end at quick scale on generated slides: what a user runs outside the notebooks."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import cloudpickle, dask, numpy as np, pandas as pd, pytest
from distributed import Client, LocalCluster, WorkerPlugin

BIN = Path(sys.executable).parent
SIDE = 2048


def _run(cmd, *args, **kw):
    return subprocess.run([str(BIN/cmd), *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture(scope='module')
def cohort(tmp_path_factory):
    "Three generated smears (one normal, two with abnormal cells) and a checkpoint of an untrained quick tile model."
    from cervix_nb.core import get_scale, seed_everything
    from cervix_nb.herlev import RegressionConstraint
    from cervix_nb.baselines import make_tile_model
    from cervix_nb.wsi import write_slide
    from cervix_nb.cohort import SmearScene
    from cervix_nb.clinical import save_checkpoint
    d = tmp_path_factory.mktemp('cohort')
    (d/'slides').mkdir()
    for k in range(3): write_slide(d/'slides'/f'S{k}.svs', SmearScene(SIDE, SIDE, seed=20 + k, abnormal_share=0.3 * k).render, SIDE, SIDE)
    rc = RegressionConstraint((0, 1)); seed_everything(0)
    ck = save_checkpoint(d/'model.pt', make_tile_model(rc, get_scale('quick')), rc, 'tiny_resnet', 64, 10,
                         extra=dict(count_rule=dict(tile_threshold=0.5, n_tiles=3)))
    return d, ck


OPTS = ['--top', 3, '--ig_steps', 4, '--workers', 0]


def test_screen_writes_all_outputs(cohort, tmp_path):
    d, ck = cohort
    r = _run('cervix-screen', d/'slides'/'S1.svs', '--model', ck, '--out', tmp_path, '--device', 'cpu', *OPTS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith('S1: ') and 'selected tiles score >= 0.5' in r.stdout
    out = tmp_path/'S1'
    assert sorted(p.name for p in out.iterdir()) == sorted(['tiles.csv', 'heatmap.png', 'review.html', 'viewer',
                                                            'annotations.geojson', 'report.json'])
    gj = json.loads((out/'annotations.geojson').read_text())
    rep = json.loads((out/'report.json').read_text())
    assert gj['type'] == 'FeatureCollection' and len(gj['features']) == rep['selected_tiles'] + rep['candidate_boxes']
    for f in gj['features']:
        ring = np.array(f['geometry']['coordinates'][0])
        assert f['geometry']['type'] == 'Polygon' and (ring[0] == ring[-1]).all()
        assert ring.min() >= 0 and ring.max() <= SIDE            # level-0 pixels of the slide
    tiles = pd.read_csv(out/'tiles.csv')
    assert rep['selected_tiles'] == tiles.selected.sum() and rep['configuration']['count_rule_source'] == 'checkpoint'


def test_screen_with_segmentation(cohort, tmp_path):
    "--segmentation: the top tiles' cells as QuPath detections in the slide, in regions.csv and on the review page."
    from cervix_nb.segmenter import MTCHI_CLASSES, make_segmenter, save_segmenter
    d, ck = cohort
    import torch
    net = make_segmenter('resnet18', decoder_channels=32)
    head = net.segmentation_head[0]   # a constructed answer: every pixel 'normal', so each top tile is one region
    with torch.no_grad(): head.weight.zero_(); head.bias.copy_(torch.tensor([0., 10., 0., 0., 0.]))
    seg = save_segmenter(tmp_path/'seg.pt', net, 'resnet18', 32, 10, 64)
    r = _run('cervix-screen', d/'slides'/'S2.svs', '--model', ck, '--segmentation', seg, '--out', tmp_path/'out',
             '--device', 'cpu', '--viewer', 0, *OPTS)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path/'out'/'S2'
    assert not (out/'viewer').exists() and 'id="viewer"' not in (out/'review.html').read_text()  # --viewer 0
    rep = json.loads((out/'report.json').read_text())
    regions = pd.read_csv(out/'regions.csv')
    dets = [f for f in json.loads((out/'annotations.geojson').read_text())['features'] if f['properties']['objectType'] == 'detection']
    assert len(dets) == len(regions) == sum(rep['segmented_regions'].values()) == len(rep['top_tiles']) == 3
    assert rep['segmented_regions'] == {'normal': 3}
    tiles = {t['rank']: t for t in rep['top_tiles']}
    for g in regions.itertuples():   # each region is its whole tile: the tile's level-0 area, centred on it
        t = tiles[g.rank]
        assert g.area0 == t['size0'] ** 2 and abs(g.x - (t['x'] + t['size0'] / 2)) < 1 and abs(g.y - (t['y'] + t['size0'] / 2)) < 1
    assert 'segmented regions' in r.stdout and rep['configuration']['segmentation'] == str(seg)
    for f in dets:
        ring = np.array(f['geometry']['coordinates'][0])
        assert (ring[0] == ring[-1]).all() and ring.min() >= 0 and ring.max() <= SIDE
        assert f['properties']['classification']['name'] in MTCHI_CLASSES[1:]
    assert set(regions['rank']) <= {t['rank'] for t in rep['top_tiles']} and (regions.area0 > 0).all()
    assert (out/'review.html').read_text().count('class="region"') == len(regions)


def test_screen_without_model_says_how_to_get_one(cohort, tmp_path):
    d, _ = cohort
    r = _run('cervix-screen', d/'slides'/'S0.svs', '--out', tmp_path)
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert 'no model given' in r.stderr and 'cervix-reproduce --sections 05_clinical' in r.stderr and 'nothing is downloaded' in r.stderr
    assert not any(tmp_path.iterdir())


def test_cohort_matches_one_by_one_and_reports_a_corrupt_slide(cohort, tmp_path):
    d, ck = cohort
    slides = tmp_path/'slides'; slides.mkdir()
    for k in range(3): (slides/f'S{k}.svs').symlink_to(d/'slides'/f'S{k}.svs')
    (slides/'corrupt.svs').write_bytes(b'II*\x00' + bytes(64))
    r = _run('cervix-cohort', slides, '--model', ck, '--out', tmp_path/'cohort', '--n_workers', 2, *OPTS)
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_csv(tmp_path/'cohort'/'cohort.csv').set_index('slide_id')
    assert df.status.to_dict() == {'S0': 'done', 'S1': 'done', 'S2': 'done', 'corrupt': 'failed'}
    assert 'corrupt.svs: not a slide tiffslide can read' in df.error['corrupt'] and '1 slide(s) failed' in r.stdout
    for k in range(3):
        one = _run('cervix-screen', d/'slides'/f'S{k}.svs', '--model', ck, '--out', tmp_path/'one', '--device', 'cpu', *OPTS)
        assert one.returncode == 0, one.stderr[-2000:]
        assert json.loads((tmp_path/'one'/f'S{k}'/'report.json').read_text())['decision'] == df.decision[f'S{k}']
        a, b = (pd.read_csv(p/f'S{k}'/'tiles.csv') for p in (tmp_path/'cohort', tmp_path/'one'))
        assert (a[['x', 'y', 'selected']].to_numpy() == b[['x', 'y', 'selected']].to_numpy()).all()
        assert np.allclose(a.score.fillna(-1), b.score.fillna(-1), atol=1e-5)


def test_cohort_resumes_after_a_kill(cohort, tmp_path):
    "A cohort run killed (SIGKILL, whole process group) after its first slide, started again: every slide once, none redone."
    d, ck = cohort
    out = tmp_path/'cohort'
    args = [str(BIN/'cervix-cohort'), str(d/'slides'), '--model', str(ck), '--out', str(out), '--n_workers', 1, *OPTS]
    p = subprocess.Popen(list(map(str, args)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not list(out.glob('*/report.json')) and time.time() - t0 < 120: time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    first = {q.parent.name: q.stat().st_mtime_ns for q in out.glob('*/report.json')}
    assert 1 <= len(first) < 3, first
    r = _run('cervix-cohort', d/'slides', '--model', ck, '--out', out, '--n_workers', 1, *OPTS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'{len(first)} done already, {3 - len(first)} to screen' in r.stdout
    assert {s: (out/s/'report.json').stat().st_mtime_ns for s in first} == first      # not screened again
    df = pd.read_csv(out/'cohort.csv')
    assert sorted(df.slide_id) == ['S0', 'S1', 'S2'] and (df.status == 'done').all()
    assert sorted(q.name for q in out.iterdir()) == ['S0', 'S1', 'S2', 'cohort.csv']  # no partial folder left behind
    for s in ['S0', 'S1', 'S2']: assert len(list((out/s).iterdir())) == 6  # 5 files and viewer/


class DieWhileScreening(WorkerPlugin):
    "Dask worker plugin: the worker process dies (os._exit: no cleanup, as when the kernel kills it for memory) shortly after it starts screening `slide`, at most `times` times in all (counted in `marks`)."
    name = 'die-while-screening'

    def __init__(self, slide, marks, times=1, delay=0.3): self.slide, self.marks, self.times, self.delay = slide, str(marks), times, delay

    def transition(self, key, start, finish, **kw):
        import os, threading
        if finish != 'executing' or not str(key).startswith(f'screen-{self.slide}-'): return
        n = len(list(Path(self.marks).glob('death-*')))
        if n >= self.times: return
        (Path(self.marks)/f'death-{n}').write_text(str(os.getpid()))
        threading.Timer(self.delay, os._exit, (1,)).start()


def _cohort_with_dying_worker(cohort, tmp_path, times, allowed_failures=3):
    from cervix_nb.cli import screen_cohort
    d, ck = cohort
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    plugin = DieWhileScreening('S1', tmp_path, times)
    # one slide on a worker at a time (no slide waiting in a dying worker's queue), and how many deaths a slide may cause
    with dask.config.set({'distributed.scheduler.allowed-failures': allowed_failures, 'distributed.scheduler.worker-saturation': 1.0}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            client.register_plugin(plugin)
            df = screen_cohort(d/'slides', ck, tmp_path/'cohort', scheduler=cluster.scheduler_address,
                               given=dict(top=3, ig_steps=4, workers=0, device='cpu'), progress=False)
    return df.set_index('slide_id'), len(list(tmp_path.glob('death-*')))


def test_cohort_worker_dies_during_a_slide_is_retried(cohort, tmp_path):
    "The worker screening S1 is killed mid-slide once: Dask runs S1 again on a live worker and every slide ends with one complete result."
    df, deaths = _cohort_with_dying_worker(cohort, tmp_path, times=1)
    assert deaths == 1
    assert df.status.to_dict() == {'S0': 'done', 'S1': 'done', 'S2': 'done'}, df.error.to_dict()
    out = tmp_path/'cohort'
    assert sorted(q.name for q in out.iterdir()) == ['S0', 'S1', 'S2', 'cohort.csv']  # nothing partial from the killed attempt
    for s in ['S0', 'S1', 'S2']: assert len(list((out/s).iterdir())) == 6  # 5 files and viewer/
    assert pd.read_csv(out/'cohort.csv').set_index('slide_id').status.to_dict() == df.status.to_dict()


def test_cohort_slide_that_keeps_killing_its_worker_is_reported(cohort, tmp_path):
    "S1 kills every worker that screens it: after Dask's allowed failures it is recorded as failed, with why, and the others complete."
    df, deaths = _cohort_with_dying_worker(cohort, tmp_path, times=99, allowed_failures=1)
    assert deaths == 2                                                   # tried on 2 workers (allowed-failures 1), then given up
    assert df.status.to_dict() == {'S0': 'done', 'S1': 'failed', 'S2': 'done'}
    assert df.error['S1'].startswith('the Dask worker screening this slide died each time it was tried') and 'screen-S1-' in df.error['S1']
    out = tmp_path/'cohort'
    assert sorted(q.name for q in out.iterdir()) == ['S0', 'S2', 'cohort.csv']


def test_argument_errors_come_before_the_heavy_imports(tmp_path):
    "A wrong path or a missing --model is answered in under 2 s: torch, Dask and the readers are not loaded yet."
    ck = tmp_path/'model.pt'; ck.write_bytes(b'x')
    for cmd, args, msg in [('cervix-screen', [tmp_path/'none.svs', '--model', ck], 'none.svs: slide not found'),
                           ('cervix-screen', [ck], 'no model given'),
                           ('cervix-screen', [ck, '--model', tmp_path/'m.pt'], 'm.pt: checkpoint not found'),
                           ('cervix-cohort', [tmp_path/'none', '--model', ck], 'slides folder or table not found'),
                           ('cervix-screen', [ck, '--model', ck, '--segmentation', tmp_path/'s.pt'], 's.pt: segmentation checkpoint not found'),
                           ('cervix-screen', [ck, '--n_tiles', 'many'], 'invalid int value'),
                           ('cervix-train', [tmp_path/'none.csv'], 'none.csv: slides table not found')]:
        t0 = time.perf_counter(); r = _run(cmd, *args); took = time.perf_counter() - t0
        assert r.returncode != 0 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr
        assert took < 2, f'{cmd} {args}: {took:.1f} s to an argument error'
    r = subprocess.run([sys.executable, '-c', 'import sys, cervix_nb.cli; print(sorted({"torch", "dask", "tiffslide"} & set(sys.modules)))'],
                       capture_output=True, text=True)
    assert r.stdout.strip() == '[]', r.stdout + r.stderr
