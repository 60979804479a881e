"""Build the series' website from the committed, executed notebooks (nothing is re-executed).

    python docs/build.py            # writes _site/ (git-ignored)
    python docs/build.py --out DIR  # anywhere else

What it does, offline:
1. stages a Sphinx source tree in a temporary folder that mirrors the repository:
   README.md becomes the home page (index.md), every notebooks/NN_*.ipynb found on disk
   becomes a page, in numeric order, figures/ is copied beside them, and api.md is generated
   with one autodoc section per vit_core module;
2. rewrites links on the way: a link to a file the site carries (a notebook, a figure, the
   README) stays a relative link; a link to any other file of the repository points to it
   on GitHub; the Colab badge image (an outside image) becomes the site's own copy; the
   notebook's own badge line is dropped, since every page gets a "run in Colab" bar;
   tqdm progress-bar widgets, which need a live kernel, are dropped;
3. copies MathJax 3 from the installed Python package django-static-mathjax (the npm
   package's files, unmodified) into the site, so maths is typeset without any network;
4. runs Sphinx (myst-nb, execution off; autodoc; the Furo theme; conf.py beside this file)
   and copies the HTML to the output folder, replacing an earlier build.

Serve it with `python -m http.server -d _site` and open http://127.0.0.1:8000.
"""
from __future__ import annotations

import argparse
import json
import os
import pkgutil
import posixpath
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from course.env import ROOT                 # the repository root, defined once (course.env)

HERE = Path(__file__).resolve().parent      # docs/: this script, conf.py, templates, static files
DEFAULT_OUT = ROOT / "_site"
MARKER = ".vit-notebooks-site"              # written into the output; only such a folder is replaced

# Where the repository lives (the notebooks' Colab badges assume the same).
REPO = "vit-notebooks/vit-notebooks"
BRANCH = "main"
GITHUB_URL = f"https://github.com/{REPO}"
COLAB_URL = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_ASSET = "_assets/colab-badge.svg"     # staged copy of static/colab-badge.svg

# vit_core modules in reading order on the API page; modules not named here follow, sorted.
API_ORDER = ["model", "loaders", "data", "train", "augment", "attention_maps", "plots", "env", "bench"]

LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)(\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
OWN_BADGE = re.compile(
    r"^\s*\[!\[[^\]]*\]\(" + re.escape(COLAB_BADGE) + r"\)\]\(https://colab\.research\.google\.com/[^)]*\)\s*$")
WIDGET = "application/vnd.jupyter.widget-view+json"


def notebooks(root: Path = ROOT) -> list[Path]:
    """The series, in order: notebooks/NN_*.ipynb as committed."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook_title(path: Path) -> str:
    """The first Markdown heading of a notebook, as its page title (inline code marks dropped)."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip().replace("`", "")
    return path.stem


class Linker:
    """Rewrites the Markdown links of one document staged at the same path as in the repository."""

    def __init__(self, carried: set[str]):
        self.carried = carried  # repository paths the site carries (staged at the same path)

    def target(self, doc: str, target: str, image: bool) -> str:
        if image and target == COLAB_BADGE:
            return posixpath.relpath(BADGE_ASSET, posixpath.dirname(doc) or ".")
        if target.startswith("#") or SCHEME.match(target) or target.startswith("/"):
            return target
        path, _, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(doc), path))
        if resolved.startswith(".."):
            return target  # outside the repository: leave it as written
        if resolved == "README.md":
            resolved = "index.md"
        if resolved in self.carried or resolved == "index.md":
            return posixpath.relpath(resolved, posixpath.dirname(doc) or ".") + (f"#{fragment}" if fragment else "")
        kind = "tree" if (ROOT / resolved).is_dir() else "blob"
        return f"{GITHUB_URL}/{kind}/{BRANCH}/{resolved}" + (f"#{fragment}" if fragment else "")

    def rewrite(self, doc: str, markdown: str) -> str:
        def one(m: re.Match) -> str:
            bang, text, target, title = m.group(1), m.group(2), m.group(3), m.group(4) or ""
            text = self.rewrite(doc, text)  # a badge is an image inside a link
            return f"{bang}[{text}]({self.target(doc, target, bool(bang))}{title})"

        return LINK.sub(one, markdown)


def stage_notebook(source: Path, dest: Path, linker: Linker) -> None:
    nb = json.loads(source.read_text(encoding="utf-8"))
    doc = f"notebooks/{source.name}"
    first_markdown = True
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            if first_markdown:
                text = "\n".join(l for l in text.splitlines() if not OWN_BADGE.match(l)).lstrip("\n")
                first_markdown = False
            cell["source"] = linker.rewrite(doc, text)
        elif cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if WIDGET not in o.get("data", {})]
    nb["metadata"].pop("widgets", None)
    dest.write_text(json.dumps(nb), encoding="utf-8")


def api_page(root: Path) -> str:
    names = [m.name for m in pkgutil.iter_modules([str(root / "vit_core")]) if not m.name.startswith("_")]
    ordered = [n for n in API_ORDER if n in names] + sorted(n for n in names if n not in API_ORDER)
    parts = [
        "# API reference: `vit_core`\n",
        "Generated from the docstrings of the code in this repository "
        f"([vit_core/ on GitHub]({GITHUB_URL}/tree/{BRANCH}/vit_core)). "
        "The package re-exports the main names, so `from vit_core import ViT` works; each is "
        "documented below in the module that defines it.\n",
        # eval-rst: docstrings are parsed as reStructuredText (inside a MyST directive they would be
        # parsed as Markdown, where "<root>/<class>" is raw HTML).
        "```{eval-rst}\n.. automodule:: vit_core\n```\n",
    ]
    for name in ordered:
        parts.append(f"## `vit_core.{name}`\n\n```{{eval-rst}}\n.. automodule:: vit_core.{name}\n   :members:\n```\n")
    return "\n".join(parts)


def vendor_mathjax(dest: Path) -> str:
    """Copy MathJax 3's CHTML build (and the components it loads on demand) into dest/mathjax."""
    try:
        import mathjax  # django-static-mathjax: MathJax's npm package under mathjax/static/mathjax
    except ImportError:
        sys.exit("MathJax is not installed: pip install -r requirements.txt (django-static-mathjax)")
    package = Path(mathjax.__file__).parent / "static" / "mathjax"
    es5 = package / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        sys.exit(f"no es5/tex-chtml.js in {package}: unexpected django-static-mathjax layout")
    out = dest / "mathjax"
    out.mkdir(parents=True)
    shutil.copy2(es5 / "tex-chtml.js", out)
    for sub in ["input", "output/chtml", "a11y", "ui", "sre", "adaptors"]:
        if (es5 / sub).is_dir():
            shutil.copytree(es5 / sub, out / sub)
    for extra in ["LICENSE", "package.json"]:
        if (package / extra).is_file():
            shutil.copy2(package / extra, out)
    return json.loads((package / "package.json").read_text())["version"]


def stage(src: Path, vendor: Path, root: Path = ROOT) -> list[Path]:
    nbs = notebooks(root)
    if not nbs:
        sys.exit(f"no notebooks/NN_*.ipynb under {root}")
    carried = {f"notebooks/{p.name}" for p in nbs}
    figures = root / "figures"
    if figures.is_dir():
        shutil.copytree(figures, src / "figures")
        carried |= {f"figures/{p.name}" for p in figures.iterdir()}
    linker = Linker(carried)
    (src / "notebooks").mkdir(parents=True)
    for nb in nbs:
        stage_notebook(nb, src / "notebooks" / nb.name, linker)
    (src / "_assets").mkdir()
    shutil.copy2(HERE / "static" / "colab-badge.svg", src / BADGE_ASSET)

    readme = linker.rewrite("index.md", (root / "README.md").read_text(encoding="utf-8"))
    toc = "\n".join(f"notebooks/{p.stem}" for p in nbs)
    readme += ("\n\n```{toctree}\n:hidden:\n:caption: Notebooks\n\n" + toc + "\n```\n"
               "\n```{toctree}\n:hidden:\n:caption: Reference\n\napi\n```\n")
    (src / "index.md").write_text(readme, encoding="utf-8")
    (src / "api.md").write_text(api_page(root), encoding="utf-8")
    version = vendor_mathjax(vendor)
    print(f"staged {len(nbs)} notebooks, README, API page, MathJax {version}")
    return nbs


def replace_output(html: Path, out: Path) -> None:
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER).exists():
            sys.exit(f"{out} exists and is not a site this script built ({MARKER} missing): not replacing it")
        shutil.rmtree(out)
    shutil.copytree(html, out)
    sources = out / "_sources"  # empty: html_copy_source is off
    if sources.is_dir() and not any(sources.iterdir()):
        sources.rmdir()
    (out / MARKER).write_text("built by docs/build.py; replaced by the next build\n")


def build(out: Path = DEFAULT_OUT, keep: Path | None = None) -> Path:
    from sphinx.cmd.build import build_main

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="vit-site-")) if keep is None else keep
    src, vendor, html = work / "src", work / "vendor", work / "build" / "html"
    for p in (src, vendor, work / "build"):
        shutil.rmtree(p, ignore_errors=True)
    stage(src, vendor)
    os.environ["VIT_SITE_VENDOR"] = str(vendor)   # read by conf.py: extra static files
    sys.path.insert(0, str(ROOT))                 # autodoc imports vit_core from this checkout
    rc = build_main(["-b", "html", "-q", "-j", "auto", "-c", str(HERE), "-d", str(work / "build" / "doctrees"),
                     str(src), str(html)])
    if rc:
        sys.exit(f"sphinx-build failed (exit {rc}); staged sources are in {work}")
    replace_output(html, out)
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)
    pages = len(list(out.rglob("*.html")))
    print(f"site: {out} ({pages} HTML pages) in {time.perf_counter() - started:.1f} s")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--keep", type=Path, help="stage and build in this folder and keep it (for debugging)")
    args = parser.parse_args(argv)
    build(args.out.resolve(), args.keep.resolve() if args.keep else None)


if __name__ == "__main__":
    main()
