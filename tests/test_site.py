"""The website, checked in a real headless Chromium (Debian's chromium + chromium-driver).

The site is built by `python docs/build.py` (CONTRIBUTING.md: building the website) from
the committed notebooks. CI builds it once and points this test at it with VIT_SITE_DIR=_site;
without VIT_SITE_DIR the test builds a fresh copy in a temporary folder (about a minute).

Every page is served by http.server on 127.0.0.1 and loaded in Chromium, driven by Selenium
through the system chromedriver (nothing is downloaded), and must show: no console errors, every
image loaded, nothing requested from another host, maths typeset by MathJax with no raw TeX
delimiters left and no display equation clipped, a "run in Colab" link, and internal links that
resolve (file and #anchor). The search index must hold every notebook's
title, and the search page must find each notebook. A 1280 px screenshot of notebook 03's page is
written to data/site-check/ (git-ignored) for a person to look at.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

pytestmark = pytest.mark.slow  # builds the site and drives a browser: `pytest -m slow`

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "docs" / "build.py"
SHOTS = ROOT / "data" / "site-check"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WIDTH, HEIGHT = 1280, 1000

# The build script, loaded by path: notebooks(), notebook_title(), the Colab address.
_spec = importlib.util.spec_from_file_location("vit_site_build", BUILD)
site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site)

NOTEBOOKS = site.notebooks(ROOT)
PAGES = ["index.html", "api.html", "search.html"] + [f"notebooks/{p.stem}.html" for p in NOTEBOOKS]

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("SKIPPED the website's browser check: Chromium and/or chromedriver are not installed "
                "(Debian: apt-get install chromium chromium-driver; .ci/run installs them when it can)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -r requirements.txt")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    given = os.environ.get("VIT_SITE_DIR")
    if given:
        path = Path(given).resolve()
        assert (path / "index.html").is_file(), f"VIT_SITE_DIR={given} holds no built site (index.html)"
        return path
    out = tmp_path_factory.mktemp("site") / "_site"
    subprocess.run([sys.executable, str(BUILD), "--out", str(out)], check=True, cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def base_url(site_dir):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver online
    profile = tempfile.mkdtemp(prefix="vit-site-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
                 f"--window-size={WIDTH},{HEIGHT}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# Runs in the page: wait for every image and for MathJax, then report what the checks need.
SETTLE = """
const done = arguments[arguments.length - 1];
const images = [...document.images];
images.forEach(i => { i.loading = 'eager'; });
Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.addEventListener('load', r);
                                                                   i.addEventListener('error', r); })))
  .then(() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null)
  .then(() => done(null), e => done(String(e)));
"""
REPORT = """
const raw = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n =>
  n.parentElement.closest('pre, code, script, style, textarea, mjx-container, .highlight, .cell_output')
    ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
while (walker.nextNode()) {
  const t = walker.currentNode.nodeValue;
  if (t.includes('$$') || t.includes('\\\\(') || t.includes('\\\\[')) raw.push(t.trim().slice(0, 80));
}
const maths = [...document.querySelectorAll('.math')];
return {
  images: document.images.length,
  broken_images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  maths: maths.length,
  untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
  mjx: document.querySelectorAll('mjx-container').length,
  tex_errors: [...document.querySelectorAll('mjx-merror')].map(m => m.textContent.slice(0, 80)),
  clipped: maths.filter(m => m.scrollWidth > m.clientWidth + 1
                             && !['auto', 'scroll'].includes(getComputedStyle(m).overflowX))
                .map(m => m.textContent.slice(0, 80)),
  raw_tex: raw,
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  colab: [...document.querySelectorAll('a.colab-link')].map(a => a.href),
  outputs: document.querySelectorAll('.cell_output').length,
  external: performance.getEntriesByType('resource').map(e => e.name)
              .filter(n => !n.startsWith(location.origin + '/') && !n.startsWith('data:')),
  h1: (document.querySelector('h1') || {}).textContent || '',
};
"""


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


def _normal(title: str) -> str:
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"')):
        title = title.replace(a, b)
    return " ".join(title.split())


def _source_markdown(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _png_outputs(nb: Path) -> int:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))


def test_every_page_is_checked(site_dir):
    built = sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*.html"))
    assert built == sorted(PAGES), "the site's pages and the pages this test checks differ"


def test_search_index_holds_every_notebook_title(site_dir):
    text = (site_dir / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1: text.rindex(")")])
    titles = {_normal(t) for t in index["titles"]}
    missing = [site.notebook_title(nb) for nb in NOTEBOOKS if _normal(site.notebook_title(nb)) not in titles]
    assert not missing, f"notebook titles missing from searchindex.js: {missing}"
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("page", PAGES)
def test_page_in_chromium(page, site_dir, base_url, browser):
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(base_url + page)
    assert browser.execute_async_script(SETTLE) is None, "images or MathJax did not settle"
    report = browser.execute_script(REPORT)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{page}: JavaScript console errors: {errors}"
    assert not report["external"], f"{page}: resources requested from other hosts: {report['external']}"
    assert not report["broken_images"], f"{page}: images that did not load: {report['broken_images']}"

    # Maths: every .math element typeset by MathJax, no TeX error, no raw delimiter left.
    assert not report["untypeset"], f"{page}: maths not typeset: {report['untypeset'][:5]}"
    assert not report["tex_errors"], f"{page}: MathJax TeX errors: {report['tex_errors'][:5]}"
    assert not report["raw_tex"], f"{page}: raw TeX delimiters left in the text: {report['raw_tex'][:5]}"
    assert not report["clipped"], f"{page}: display maths wider than the column and not scrollable: {report['clipped']}"

    # Run in Colab: on every page; a notebook's page opens that notebook.
    assert report["colab"], f"{page}: no 'run in Colab' link"
    assert all(h.startswith(site.COLAB_URL) for h in report["colab"]), report["colab"]
    if page.startswith("notebooks/"):
        assert report["colab"][0] == f"{site.COLAB_URL}/{page[:-len('.html')]}.ipynb"
        nb = ROOT / (page[:-len(".html")] + ".ipynb")
        if re.search(r"\$[^$\s][^$]*\$", _source_markdown(nb)):
            assert report["mjx"] > 0, f"{page}: the notebook has maths, the page shows none"
        assert report["outputs"] > 0, f"{page}: no cell outputs rendered"
        assert report["images"] >= 1 + _png_outputs(nb), f"{page}: fewer images than the notebook's figures"
        assert _normal(report["h1"]).rstrip("\u00b6#").strip() == _normal(site.notebook_title(nb))

    # Internal links: the file exists and the #anchor is on it.
    origin = base_url.rstrip("/")
    bad = []
    for href in sorted(set(report["links"])):
        if not href.startswith(origin + "/"):
            continue
        parts = urlsplit(href)
        path = unquote(parts.path).lstrip("/")
        target = site_dir / path
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            bad.append(f"{href} (no such file)")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target):
            bad.append(f"{href} (no #{parts.fragment} on {path})")
    assert not bad, f"{page}: internal links that do not resolve: {bad}"

    if page == "notebooks/03_self_attention.html":
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "03_self_attention_1280.png"))
        browser.execute_script(  # Furo scrolls smoothly: jump instead, so the shot shows the maths
            "const m = document.querySelector('div.math');"
            "if (m) window.scrollTo({top: m.getBoundingClientRect().top + window.scrollY - 120, behavior: 'instant'});")
        browser.save_screenshot(str(SHOTS / "03_self_attention_1280_maths.png"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_search_page_finds_notebook(nb, base_url, browser):
    title = _normal(site.notebook_title(nb))
    words = " ".join(re.findall(r"[A-Za-z][A-Za-z-]{3,}", title.split("·", 1)[-1])[:3]) or title
    browser.get(f"{base_url}search.html?q={quote(words)}")
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const s = document.querySelector('#search-results .search-summary');"
        "return s && s.innerText.startsWith('Search finished');"))
    hrefs = browser.execute_script("return [...document.querySelectorAll('#search-results li a')].map(a => a.href)")
    assert any(f"notebooks/{nb.stem}.html" in h for h in hrefs), f"searching {words!r} did not find {nb.stem}: {hrefs}"
