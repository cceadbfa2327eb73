"""The one shared smoke test: each script, run as a user would, must learn something.

Every script trains for a few dozen steps on a tiny data set this test suite writes itself
(see conftest.py: no network, no downloaded data), on the CPU. The test reads the
`loss 1.2345` figures from its progress lines and asks that the last one be clearly below the
first, that it exits 0 without a traceback, and that it leaves a checkpoint behind.
"""

import re

import pytest
from conftest import SCRIPTS, run_script


@pytest.mark.parametrize("folder", SCRIPTS)
def test_loss_falls(folder, names_data, pairs_data, tmp_path):
    data = pairs_data if folder == "seq2seq-translation" else names_data
    checkpoint = tmp_path / "model.pt"
    result = run_script(folder, "--data-dir", data, "--checkpoint", checkpoint, "--device", "cpu",
                        "--seed", 0, "--max-steps", 40, "--log-every", 5, "--batch-size", 16)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    losses = [float(x) for x in re.findall(r"\bloss (\d+\.\d+)", result.stderr)]
    assert len(losses) >= 4, result.stderr[-3000:]
    assert losses[-1] < 0.8 * losses[0], f"loss did not fall: {losses}"
    assert checkpoint.exists() and not list(tmp_path.glob("*.tmp"))
