"""pytest's defaults for this repository: what the README's `pytest` means.

`pytest` alone runs the tested, fast profile: unless VIT_PROFILE is already set, it sets
VIT_PROFILE=smoke for the unit tests and for every notebook kernel nbval starts (a kernel
inherits this process's environment). Jupyter's default stays the full profile. To run the
notebooks as a reader would (real budgets, downloads, hours on a CPU): `VIT_PROFILE=full pytest`.
"""
import os


def pytest_configure(config):
    os.environ.setdefault("VIT_PROFILE", "smoke")
