#!/usr/bin/env python
"""The docs site: built by Quarto as `nbdev_docs` builds it, then read in headless Chromium as a reader would.

Usage: python .ci/docs_check.py [--build-only | --check-only]

Build: nbdev's own steps (sidebar, processed notebooks, `quarto render`) into `_docs/`. Unlike `nbdev_docs`
it leaves README.md alone: nbdev would re-render README.md from index.ipynb, and ours is its own page
(the results tables, the commands). Without Quarto on PATH it says where to get it and fails.

Check, each page in Chromium (Playwright driving Debian's /usr/bin/chromium; no request may leave the file
system): every notebook has its page, a sidebar entry and entries in search.json; each page shows its title
and subtitle, no `#|` line, no Python traceback, no image whose file is missing, no code block wider than its
column. A screenshot of every page goes to `_docs/screenshots/`. Without Chromium the check fails under
CI=true and otherwise warns.
"""
import json, os, shutil, subprocess, sys, time
from pathlib import Path

import nbformat, yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'_docs'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
LOCAL = ('file:', 'data:', 'blob:', 'about:')

# What a reader sees, measured in the page once it has loaded (Quarto lays out code blocks with JS).
PAGE_FACTS = """() => {
  const text = el => (el ? el.innerText.trim() : '');
  const main = document.querySelector('main') || document.body;
  const pre = [...main.querySelectorAll('pre')];
  return {
    title: text(document.querySelector('h1.title')),
    subtitle: text(document.querySelector('.description, .subtitle')),
    sidebar: [...document.querySelectorAll('#quarto-sidebar a.sidebar-link')]
               .map(a => a.getAttribute('href').replace(/^\\.\\//, '')),
    directives: pre.map(p => p.innerText).join('\\n').split('\\n').filter(l => /^\\s*#\\|/.test(l)),
    traceback: /Traceback \\(most recent call last\\)|Error\\s+Traceback/.test(main.innerText),
    broken_images: [...main.querySelectorAll('img')]
                     .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    wide_code: pre.filter(p => p.scrollWidth > p.clientWidth + 1)
                  .map(p => p.innerText.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 80)),
  };
}"""


def quarto() -> str | None:
    return shutil.which('quarto')


def build() -> int:
    "Render the site into _docs/ with Quarto, as nbdev_docs does, README.md untouched."
    if not quarto():
        print("docs: Quarto not found on PATH. Install it from https://quarto.org/docs/get-started/ "
              "(nbdev_docs renders the site with it), then run `make docs` again.", file=sys.stderr)
        return 1
    from nbdev.quarto import _pre_docs
    t0 = time.time()
    os.chdir(ROOT)
    cache, cfg, _ = _pre_docs()
    r = subprocess.run(['quarto', 'render', '--no-cache'], cwd=cache, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-6000:], sep='\n', file=sys.stderr)
        print(f"docs: quarto render failed (exit {r.returncode})", file=sys.stderr)
        return 1
    shutil.rmtree(cfg.doc_path, ignore_errors=True)
    shutil.move(str(cache/cfg.doc_path.name), str(cfg.config_path))
    print(f"docs: site rendered by Quarto ({subprocess.run(['quarto', '--version'], capture_output=True, text=True).stdout.strip()}) "
          f"into {OUT.relative_to(ROOT)}/ in {time.time() - t0:.0f} s")
    return 0


def front_matter(nb) -> dict:
    "The YAML front matter nbdev puts in a processed notebook's first raw cell."
    cell = nb.cells[0] if nb.cells else None
    if cell is None or cell.cell_type != 'raw' or not cell.source.lstrip().startswith('---'): return {}
    return yaml.safe_load(cell.source.strip().strip('-')) or {}


def expected_pages() -> dict:
    "Every notebook of nbs/ -> its page's file, title and subtitle, from nbdev's processed copies."
    pages = {}
    for src in sorted((ROOT/'nbs').glob('*.ipynb')):
        if src.name.startswith(('_', '.')): continue
        proc = ROOT/'_proc'/src.name
        fm = front_matter(nbformat.read(proc, as_version=4)) if proc.exists() else {}
        pages[src.stem] = dict(file=fm.get('output-file', src.stem + '.html'), title=fm.get('title'),
                               subtitle=fm.get('description'))
    return pages


def page_problems(stem: str, want: dict, facts: dict, all_files: list) -> list:
    "What is wrong with one rendered page, as sentences naming the page."
    name, bad = f"{stem}.ipynb -> {want['file']}", []
    if not want['title']: bad.append(f"{name}: the notebook has no '# Title' heading")
    if not facts['title']: bad.append(f"{name}: no title shown")
    if not want['subtitle'] or not facts['subtitle']:
        bad.append(f"{name}: no subtitle (the notebook's '> subtitle' line under its title)")
    missing = [f for f in all_files if f not in facts['sidebar']]
    if missing: bad.append(f"{name}: sidebar lacks {missing}")
    if facts['directives']: bad.append(f"{name}: shows cell directives {facts['directives'][:3]}")
    if facts['traceback']: bad.append(f"{name}: shows a Python traceback")
    if facts['broken_images']: bad.append(f"{name}: images that do not load {facts['broken_images'][:3]}")
    if facts['wide_code']: bad.append(f"{name}: {len(facts['wide_code'])} code block(s) wider than "
                                      f"their column, e.g. {facts['wide_code'][0]!r}")
    return bad


def search_problems(pages: dict) -> list:
    "Pages that search.json does not index."
    index = OUT/'search.json'
    if not index.exists(): return ['_docs/search.json missing: the site has no search']
    hrefs = {e['href'].split('#')[0] for e in json.loads(index.read_text())}
    return [f"search.json has no entry for {p['file']}" for p in pages.values() if p['file'] not in hrefs]


def check() -> int:
    "Open every page in headless Chromium and check what a reader sees; screenshots kept."
    t0 = time.time()
    pages, errors = expected_pages(), []
    errors += [f"{s}.ipynb: no page {p['file']} in _docs/" for s, p in pages.items()
               if not (OUT/p['file']).exists()]
    errors += search_problems(pages)
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if not chromium:
        msg = "docs: Chromium not found (Debian: apt-get install chromium); pages not opened in a browser"
        if os.environ.get('CI', '').lower() == 'true': errors.append(msg)
        else: print("WARNING " + msg)
    else:
        from playwright.sync_api import sync_playwright
        shots = OUT/'screenshots'; shutil.rmtree(shots, ignore_errors=True); shots.mkdir(parents=True)
        files, network = [p['file'] for p in pages.values()], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={'width': 1280, 'height': 1600})
            def local_only(route):
                if route.request.url.startswith(LOCAL): return route.continue_()
                network.append(route.request.url); route.abort()
            ctx.route('**/*', local_only)
            page = ctx.new_page()
            for stem, want in pages.items():
                if not (OUT/want['file']).exists(): continue
                page.goto((OUT/want['file']).as_uri(), wait_until='load')
                errors += page_problems(stem, want, page.evaluate(PAGE_FACTS), files)
                page.screenshot(path=str(shots/f'{stem}.png'))
            browser.close()
        for u in sorted(set(network)):  # Quarto's theme font and its script loader; refused here
            print(f"docs: note: a page asks the network for {u} (refused; the page renders without it)")
        print(f"docs: {len(pages)} pages opened in Chromium, screenshots in _docs/screenshots/ "
              f"({time.time() - t0:.0f} s)")
    for e in errors: print('docs check FAILED:', e, file=sys.stderr)
    if not errors: print(f'docs check passed: {len(pages)} pages')
    return 1 if errors else 0


if __name__ == '__main__':
    args = sys.argv[1:]
    if '--check-only' not in args and (rc := build()): sys.exit(rc)
    if '--build-only' in args: sys.exit(0)
    sys.exit(check())
