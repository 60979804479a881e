"""The maintainers' tools: what keeps the course honest, never needed to read it. Run each from
the repository root as `python -m tools.NAME`; tools/ is not installed (tests import it through
pytest's `pythonpath = ["."]`).

    tools.bench      vit_core's training-step speed against timm and torchvision; ViT-B/16 on a GPU
    tools.gpu_check  everything this project needs a GPU for, in one command, and its README section
    tools.rehearsal  a reader's full-profile run, rehearsed offline on fakes (fast dev run)
    tools.fakes      format-true fakes of every download, for the rehearsal
    tools.results    the README's results table from data/checkpoints/, and the one README section writer
"""
