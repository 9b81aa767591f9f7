#!/usr/bin/env python
"""Screening speed: tiles/s of the tile classifier alone and end to end from a slide file, Integrated Gradients s/tile, peak memory.

1. Writes a bench slide scanned at 10X (`--side` px a side, JPEG tiles, a smear-shaped sample on blank glass, its texture
   tiled from a §5 synthetic smear) unless it exists.
2. Model only: the tile classifier (`--backbone`, binary regression-constraint head) on uint8 tiles already on the device,
   eager float32, then bf16 + channels_last, then the same compiled (CUDA only); tiles/s over `--iters` batches.
3. End to end: `screen_tiles` on the slide (reader processes, tile selection, scores), wall time, selected tiles/s and grid
   tiles/s, peak host memory (this process and its readers, sampled every 20 ms) and peak GPU memory; on the full slide
   and on its top-left quarter (a slide of a quarter of the area) to show host memory does not grow with the slide.
4. Integrated Gradients: seconds per tile for captum's default (50 steps, float32) and for 16 Gauss-Legendre steps
   (bf16 autocast on CUDA), and the 16-step maps' agreement with a 256-step float32 reference on the same tiles.

The model's weights come from `--checkpoint` (a `save_checkpoint` file) or are random (speed does not depend on them);
random weights get batch-norm statistics re-estimated on slide tiles before IG, else a deep random network saturates and
its attributions are all zero. The IG agreement of such a network is reported as such. Prints a table and writes JSON.

    python bench/screen_speed.py                                       # quick scale, CPU
    python bench/screen_speed.py --scale paper --compile               # paper scale (ResNet-101, 256-px tiles), GPU
    python bench/screen_speed.py --scale paper --tile 800 --compile    # the 800-px tiles of §4
"""
import argparse, copy, json, os, platform, threading, time
from pathlib import Path

import numpy as np
import psutil
import torch
from PIL import Image


from cervix_nb.core import get_scale, get_device, out_dir, atomic_write, seed_everything
from cervix_nb.wsi import Slide, default_workers, read_at, write_slide
from cervix_nb.cohort import SmearScene
from cervix_nb.clinical import BINARY_W_R, load_checkpoint
from cervix_nb.herlev import RegressionConstraint, SeverityNet, integrated_gradients
from cervix_nb.baselines import build_tile_backbone
from cervix_nb.screen import ScreenSettings, prepare_scorer, screen_tiles


class PeakMemory:
    "Peak proportional set size (PSS: shared pages split between the processes) of this process and its reader processes, sampled in a thread."
    def __init__(self, every=0.05): self.every, self.peak, self._stop = every, 0, threading.Event()
    def _rss(self):
        p, tot = psutil.Process(), 0
        try: procs = [p] + p.children(recursive=True)
        except psutil.Error: procs = [p]
        for q in procs:
            try: tot += q.memory_full_info().pss
            except (psutil.Error, AttributeError): pass  # a reader that just ended
        return tot
    def _loop(self):
        while not self._stop.is_set(): self.peak = max(self.peak, self._rss()); time.sleep(self.every)
    def __enter__(self): self._t = threading.Thread(target=self._loop, daemon=True); self._t.start(); return self
    def __exit__(self, *a): self._stop.set(); self._t.join()


def bench_slide(path: Path, side: int, seed: int = 0) -> Path:
    "A slide scanned at 10X (mpp 1), `side` px a side: an elliptic sample whose texture repeats a 40X smear downsampled 4x."
    if path.exists(): return path
    patch = 1024  # 10X px: the centre of a 40X smear of 8192 px, downsampled 4x
    scene = SmearScene(8 * patch, 8 * patch, seed=seed, abnormal_share=0.2)
    bank = np.asarray(Image.fromarray(scene.render(2 * patch, 2 * patch, 4 * patch, 4 * patch)).resize((patch, patch), Image.BOX))
    glass = np.array([236, 233, 238], np.uint8)
    def render(x0, y0, w, h):
        rows = bank[np.arange(y0, y0 + h) % patch]                        # (h, patch, 3)
        px = np.tile(rows, (1, (x0 % patch + w) // patch + 1, 1))[:, x0 % patch:x0 % patch + w]
        xx, yy = np.arange(x0, x0 + w)[None, :] / side - 0.5, np.arange(y0, y0 + h)[:, None] / side - 0.5
        inside = (xx / 0.47) ** 2 + (yy / 0.45) ** 2 <= 1                  # the sample: an ellipse on blank glass
        return np.where(inside[..., None], px, glass)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_slide(path, render, side, side, mpp=1.0, magnification=10, tile=512, desc='bench slide')


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def model_only(scorer, pipe, device, tile, batch, iters):
    "(tiles/s of a prepared `Scorer` on uint8 tiles already on the device, seconds of its warm-up: compilation included)."
    net, dtype = scorer.net, scorer.dtype
    x = torch.randint(0, 256, (batch, tile, tile, 3), dtype=torch.uint8, device=device)
    with torch.no_grad():
        run = lambda: pipe.score(net(x.permute(0, 3, 1, 2).to(dtype).div_(255)).float())
        t0 = time.perf_counter()
        for _ in range(3): run()
        sync(device); warm = time.perf_counter() - t0; t0 = time.perf_counter()
        for _ in range(iters): run()
        sync(device)
    return batch * iters / (time.perf_counter() - t0), warm


def end_to_end(path, scorer, pipe, device, tile, batch, workers, readers='process', reads='block', magnification=None):
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        settings = ScreenSettings(tile=tile, batch_size=batch, workers=workers, readers=readers, scan_power=magnification,
                                  block=None if reads == 'block' else 0)
        with Slide(path, magnification=magnification) as s: g = screen_tiles(s, scorer, pipe, settings)
        sec = time.perf_counter() - t0
    return dict(slide=Path(path).name, readers=readers, reads=reads, grid_tiles=len(g), selected_tiles=int(g.selected.sum()), scored_tiles=int((~g.flat).sum()),
                seconds=sec, selected_tiles_per_s=g.selected.sum() / sec, grid_tiles_per_s=len(g) / sec,
                peak_host_mb=mem.peak / 2**20, peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if device.type == 'cuda' else None)


@torch.no_grad()
def calibrate_batchnorm(model, x, batch=16):
    "Batch-norm running statistics re-estimated on real tiles (cumulative average), so a network with random weights does not saturate."
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm): m.reset_running_stats(); m.momentum = None
    model.train()
    for i in range(0, len(x), batch): model(x[i:i + batch].float() / 255)
    return model.eval()


def ig_bench(model, pipe, x, device, repeats, compiled=False):
    "(rows: setting, s/tile, corr and relative error vs 256 steps); model and tiles channels_last; `compiled` adds a torch.compile row."
    model = model.to(device, memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
    chunk = int(min(64, max(1, 8 * (800 / x.shape[-1]) ** 2)))  # path points per backward pass: bounds GPU memory
    def run(steps, bf16, per_call, net=model):
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
        with ctx: a, _ = integrated_gradients(net, pipe, x, steps=steps, batch_size=per_call, device=device,
                                              internal_batch_size=chunk * (2 if bf16 else 1))
        sync(device); return a.float()
    ref = run(256, False, 1)
    settings = [('captum default: 50 steps, float32, 1 tile per call', 50, False, 1, False),
                ('50 steps, bf16 autocast', 50, True, len(x), False),
                ('16 steps Gauss-Legendre, float32', 16, False, len(x), False),
                ('16 steps Gauss-Legendre, bf16 autocast', 16, True, len(x), False)]
    # integrated_gradients freezes the weights while it runs (input gradients only), so the compiled graph traces no weight gradient
    cuda = device.type == 'cuda'
    if compiled: settings.append((f"16 steps Gauss-Legendre, {'bf16 autocast' if cuda else 'float32'}, compiled", 16, cuda, len(x), True))
    compiled_model = torch.compile(copy.deepcopy(model)) if compiled else None
    rows = []
    for name, steps, bf16, per_call, comp in settings:
        if bf16 and device.type != 'cuda': continue
        net = compiled_model if comp else model
        run(steps, bf16, per_call, net); times = []
        for _ in range(repeats):
            t0 = time.perf_counter(); a = run(steps, bf16, per_call, net); times.append(time.perf_counter() - t0)
        u, v = a.flatten(1).double(), ref.flatten(1).double()
        corr = float(np.mean([np.corrcoef(p.numpy(), q.numpy())[0, 1] for p, q in zip(u, v)]))
        rows.append(dict(setting=name, seconds_per_tile=float(np.median(times)) / len(x), corr_vs_256=corr,
                         rel_error_vs_256=float(np.median(((u - v).norm(dim=1) / v.norm(dim=1)).numpy()))))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--scale', default=None, help="'quick' or 'paper' (default $CERVIX_SCALE, else quick)")
    ap.add_argument('--tile', type=int, default=None, help='tile side at 10X (default: 256 paper, 128 quick, as §5.1)')
    ap.add_argument('--backbone', default=None, help="default: the scale's (resnet101 at paper scale)")
    ap.add_argument('--side', type=int, default=None, help='bench slide side at 10X, px (default: 48000 paper, 4096 quick)')
    ap.add_argument('--batch', type=int, default=None, help='tiles per batch (default 64 on CUDA, 32 on CPU)')
    ap.add_argument('--iters', type=int, default=20, help='batches timed in the model-only runs')
    ap.add_argument('--workers', type=int, default=None, help='reader processes (default: every core but one, at most 16)')
    ap.add_argument('--readers', default='process,thread', help="reader kinds to time end to end, comma-separated: process, thread")
    ap.add_argument('--reads', default='block', help="tile reading to time end to end, comma-separated: block (TileBlocks, default), tile (one region per tile)")
    ap.add_argument('--skip_ig', action='store_true', help='no Integrated Gradients timing')
    ap.add_argument('--compile', action='store_true', help='also time torch.compile: the model (CUDA; then used end to end) and Integrated Gradients')
    ap.add_argument('--ig_tiles', type=int, default=4, help='tiles explained per IG setting')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--checkpoint', default=None, help='tile-classifier checkpoint (save_checkpoint); default random weights')
    ap.add_argument('--slide', default=None, help='bench slide path (default: data/outputs/bench/bench-<side>px-10x.tif)')
    ap.add_argument('--device', default=None)
    ap.add_argument('--out', default=None, help='JSON file (default: data/outputs/bench/screen_speed-<scale>-<device>.json)')
    a = ap.parse_args()

    scale, device = get_scale(a.scale), get_device(a.device)
    tile = a.tile or (256 if scale.name == 'paper' else 128)
    side = a.side or (48_000 if scale.name == 'paper' else 4096)
    batch = a.batch or (64 if device.type == 'cuda' else 32)
    workers = default_workers() if a.workers is None else a.workers
    torch.backends.cudnn.benchmark = True
    seed_everything(0)
    pipe = RegressionConstraint(BINARY_W_R)
    if a.checkpoint: model, pipe, meta = load_checkpoint(a.checkpoint); backbone, weights = meta['backbone'], a.checkpoint
    else:
        backbone, weights = a.backbone or scale.backbone, 'random'
        model = SeverityNet(build_tile_backbone(backbone, pretrained=False), pipe.n_out).eval()

    slide = Path(a.slide) if a.slide else out_dir('bench')/f'bench-{side}px-10x.tif'
    t0 = time.time(); bench_slide(slide, side); t_write = time.time() - t0
    quarter = slide.with_name(slide.stem + '-quarter.tif')
    t0 = time.time(); bench_slide(quarter, side // 2); t_write += time.time() - t0

    res = dict(scale=scale.name, device=str(device), device_name=torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
               cpu_cores=len(os.sched_getaffinity(0)), backbone=backbone, weights=weights, tile=tile, batch=batch, workers=workers,
               slide_side=side, slide_write_seconds=round(t_write, 1),
               versions=dict(python=platform.python_version(), torch=str(torch.__version__)))
    nets = [('float32 eager', 'fp32', False)]
    if device.type == 'cuda': nets += [('bf16 channels_last', 'bf16', False)] + ([('bf16 channels_last compiled', 'bf16', True)] if a.compile else [])
    rows = []
    for mode, precision, comp in nets:
        net = prepare_scorer(model, device, precision, comp)
        tps, warm = model_only(net, pipe, device, tile, batch, a.iters)
        rows.append(dict(mode=mode, tiles_per_s=tps, warmup_seconds=warm))
    res['model_only'] = rows
    res['end_to_end_mode'] = rows[-1]['mode']  # the last (fastest) model screens the slides; the quarter slide runs first
    e2e = [end_to_end(p, net, pipe, device, tile, batch, workers, kind, reads) for kind in a.readers.split(',') for reads in a.reads.split(',')
           for p in (quarter, slide)]
    res['end_to_end'] = e2e

    with Slide(slide) as s:
        xy = [((side // 2 + k * tile) % (side - tile), (side // 2 + j * tile) % (side - tile)) for j in range(4) for k in range(max(a.ig_tiles, 8))]
        x = torch.stack([torch.from_numpy(np.array(read_at(s, x0, y0, tile, 10))).permute(2, 0, 1) for x0, y0 in xy])
    if weights == 'random': calibrate_batchnorm(model.to(device), x.to(device))  # else the deep random network saturates and IG is 0
    res['integrated_gradients'] = [] if a.skip_ig else ig_bench(model, pipe, x[:a.ig_tiles], device, a.repeats, compiled=a.compile)

    print(f"{res['device_name']} ({res['cpu_cores']} cores), {backbone} ({weights} weights), {tile}-px tiles at 10X, batch {batch}, {workers} reader processes")
    for r in rows: print(f"  model only, {r['mode']:<28} {r['tiles_per_s']:9.1f} tiles/s (warm-up {r['warmup_seconds']:.1f} s)")
    print(f"  end to end with the {res['end_to_end_mode']} model:")
    for r in e2e:
        gpu = f", peak GPU {r['peak_gpu_mb']:.0f} MB" if r['peak_gpu_mb'] is not None else ''
        print(f"  end to end ({r['readers']} readers, {r['reads']} reads) {r['slide']}: {r['grid_tiles']} grid tiles, {r['selected_tiles']} selected, {r['seconds']:.2f} s -> "
              f"{r['selected_tiles_per_s']:.1f} selected tiles/s ({r['grid_tiles_per_s']:.1f} grid tiles/s), peak host {r['peak_host_mb']:.0f} MB{gpu}")
    for r in res['integrated_gradients']:
        print(f"  IG per tile, {r['setting']:<52} {r['seconds_per_tile']:.4f} s  corr vs 256 steps {r['corr_vs_256']:.4f}  rel. error {r['rel_error_vs_256']:.3f}")
    out = Path(a.out) if a.out else out_dir('bench')/f"screen_speed-{scale.name}-{device.type}.json"
    atomic_write(out, json.dumps(res, indent=1, default=str))
    print(f'written: {out}')


if __name__ == '__main__':
    main()
