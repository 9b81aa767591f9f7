"""The library's layout: every module exported from one notebook, imports that point only backwards in
notebook order (a reader meets a name before it is used), the screening product apart from the
synthetic cohort, and no module grown past a readable size."""
import ast, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT/'cervix_nb'
MAX_LINES = 700


def _modules() -> dict:
    "module name -> (its notebook's file name, its path), from nbdev's header."
    out = {}
    for p in sorted(LIB.glob('*.py')):
        m = re.search(r'File to edit: \.\./nbs/(\S+\.ipynb)', p.read_text().splitlines()[2] if
                      len(p.read_text().splitlines()) > 2 else '')
        if m: out[p.stem] = (m.group(1), p)
    return out


def _imported(path:Path) -> set:
    "cervix_nb modules imported anywhere in a file (top level or inside functions)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: found.add(node.module.split('.')[0])
            elif node.module and node.module.startswith('cervix_nb.'): found.add(node.module.split('.')[1])
            elif node.module == 'cervix_nb': found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('cervix_nb.')}
    return found


def test_every_module_has_its_notebook():
    mods = _modules()
    assert {'core', 'cohort', 'clinical', 'segmenter', 'screen', 'segmentation'} <= set(mods), mods
    for name, (nb, _) in mods.items(): assert (ROOT/'nbs'/nb).exists(), (name, nb)


def test_imports_point_backwards_in_notebook_order():
    mods = _modules(); order = {m: nb for m, (nb, _) in mods.items()}
    late = []
    for m, (nb, path) in mods.items():
        for used in _imported(path) & set(mods):
            if used != m and order[used] > nb: late.append(f'{m} ({nb}) imports {used} ({order[used]})')
    assert not late, late


def test_the_screening_product_does_not_import_the_cohort():
    assert 'cohort' not in _imported(LIB/'screen.py')
    assert 'segmentation' not in _imported(LIB/'screen.py')  # 06b's study comes after the product


def test_no_module_past_a_readable_size():
    sizes = {p.name: len(p.read_text().splitlines()) for p in LIB.glob('*.py') if p.name != '_modidx.py'}
    assert max(sizes.values()) <= MAX_LINES, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_every_page_links_its_notebook_on_colab():
    "Each notebook (each docs page) opens in Colab from the repository settings.ini names."
    import configparser, json
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini'); d = cfg['DEFAULT']
    base = d['git_url'].replace('https://github.com/', 'https://colab.research.google.com/github/')
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        text = ''.join(''.join(c['source']) for c in json.load(open(nb))['cells'] if c['cell_type'] == 'markdown')
        assert f"({base}/blob/{d['branch']}/nbs/{nb.name})" in text, nb.name
