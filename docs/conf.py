"""Sphinx configuration of the series' website. Run it through build.py beside this file, which
stages the sources (README as home page, the executed notebooks, the API page) and MathJax."""
import os
from pathlib import Path


def _load_build():
    """build.py beside this file, by path (a module named `build` on sys.path could shadow it)."""
    import importlib.util
    path = Path(__file__).resolve().parent / "build.py"
    spec = importlib.util.spec_from_file_location("vit_site_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_build = _load_build()
COLAB_URL, GITHUB_URL, BRANCH = _build.COLAB_URL, _build.GITHUB_URL, _build.BRANCH

project = "vit-notebooks"
author = "the vit-notebooks authors"
copyright = "the vit-notebooks authors"

extensions = [
    "myst_nb",                # Markdown pages and .ipynb pages, outputs as committed
    "sphinx.ext.autodoc",     # the API page, from vit_core's docstrings
    "sphinx.ext.mathjax",     # maths, with the MathJax copy below
    "sphinx.ext.githubpages", # .nojekyll, so GitHub Pages serves _static/ and _images/
]

# Notebooks: render what is committed; never start a kernel.
nb_execution_mode = "off"
nb_ipywidgets_js = {}                    # no widget JavaScript from a CDN (build.py drops widget outputs)
nb_merge_streams = True                  # one block per stdout/stderr run, as Jupyter shows it
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True          # "$$...$$" inside a paragraph is display maths too
myst_heading_anchors = 3                 # README-style #anchors on headings

# Maths: MathJax 3 served from the site itself (_static/mathjax, copied by build.py).
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}

# API page: plain-prose docstrings, where `x` means code (as in Markdown).
default_role = "code"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

root_doc = "index"
exclude_patterns = []
templates_path = [str(Path(__file__).resolve().parent / "templates")]
html_static_path = ["static"] + ([os.environ["VIT_SITE_VENDOR"]] if os.environ.get("VIT_SITE_VENDOR") else [])
html_css_files = ["site.css"]
html_theme = "furo"
html_title = "vit-notebooks"
html_favicon = "static/favicon.svg"
html_theme_options = {"top_of_page_buttons": [], "navigation_with_keys": True}
html_copy_source = False                 # the notebooks are on GitHub; no second copy in the site
html_show_sourcelink = False
html_use_index = False
html_domain_indices = False
html_last_updated_fmt = None
suppress_warnings = ["myst.header"]      # README headings start at level 1 then skip levels in places


def page_links(app, pagename, templatename, context, doctree):
    """Every page gets a 'run in Colab' link: its own notebook, or the repository's notebooks."""
    if pagename.startswith("notebooks/"):
        context["colab_url"] = f"{COLAB_URL}/{pagename}.ipynb"
        context["github_url"] = f"{GITHUB_URL}/blob/{BRANCH}/{pagename}.ipynb"
        context["colab_label"] = "Run this notebook in Colab"
    else:
        context["colab_url"] = COLAB_URL
        context["github_url"] = GITHUB_URL
        context["colab_label"] = "Open the series' notebooks in Colab"


def setup(app):
    app.connect("html-page-context", page_links)
