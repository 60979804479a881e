"""The reader's path, rehearsed: every notebook with a full-profile branch runs in the full
profile under the fast dev run, on format-true fakes, with the network unreachable, through
nbval (tools.rehearsal). Its numbers mean nothing; that the code runs is what is checked."""
import json
import subprocess
import sys

import nbformat
import pytest

from tools import gpu_check, rehearsal


def nbval(notebook, workdir, environ, tmp_path):
    """Run one .ipynb through nbval with the rehearsal's environment; (exit code, output)."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               "--rootdir", str(workdir), "-c", str(workdir / "pytest.ini"), "-q", str(notebook)]
    (workdir / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run(command, env=environ, cwd=workdir, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_rehearsal_kernels_are_offline_and_skip_md5_for_fakes_only(rehearsal_env, tmp_path):
    workdir, environ = rehearsal_env
    data = environ["VIT_DATA"]
    outside = tmp_path / "real-looking-file"
    outside.write_bytes(b"not the real bytes")
    cells = [
        "import socket, pytest\nwith pytest.raises(OSError, match='network unreachable'):\n"
        "    socket.create_connection(('download.pytorch.org', 443), timeout=5)",
        "import torchvision.datasets.cifar as cifar\n"
        f"assert cifar.check_integrity({data + '/cifar-100-python/train'!r}, '0' * 32)  # a fake: skipped\n"
        f"assert not cifar.check_integrity({str(outside)!r}, '0' * 32)  # anything else: checked",
        "from course import env\nline = env.describe()\nassert 'FAKE DATA / RANDOM WEIGHTS' in line, line\n"
        "assert env.get_profile() == 'full' and env.is_fast_dev_run()",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(notebook, tmp_path / "offline_check.ipynb")
    code, output = nbval(tmp_path / "offline_check.ipynb", workdir, environ, tmp_path)
    assert code == 0, output[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("prefix", rehearsal.FULL_BRANCH)
def test_full_profile_branch_runs_on_fakes(prefix, rehearsal_env, tmp_path):
    workdir, environ = rehearsal_env
    junit = tmp_path / "junit.xml"
    code = rehearsal.run([prefix], workdir=workdir, junit=junit, environ=environ, pytest_args=["-q"])
    rows = gpu_check.notebook_times(junit) if junit.is_file() else {}
    assert code == 0 and len(rows) == 1 and all(r["passed"] for r in rows.values()), (
        f"notebook {prefix} failed in the rehearsal (pytest exit code {code}; its output is above): {json.dumps(rows)}")
