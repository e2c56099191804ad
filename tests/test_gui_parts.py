"""Parts of the lab window that need no window: count rates, file names, message texts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from labctl.analysis.count_rates import CountRateMeter


def test_count_rates_start_again_with_a_new_run() -> None:
    meter = CountRateMeter(window_s=1.0)
    assert meter.update({"elapsed_s": 0.0, "counts": {0: 0, 1: 0}}) == {}
    assert meter.update({"elapsed_s": 0.5, "counts": {0: 125_000, 1: 1_000}}) == {}  # under one window
    assert meter.update({"elapsed_s": 2.0, "counts": {0: 500_000, 1: 4_000}}) == {0: 250_000.0, 1: 2_000.0}
    # a restarted run: elapsed and counts start from zero again (no negative or frozen rates)
    assert meter.update({"elapsed_s": 0.1, "counts": {0: 12_500, 1: 100}}) == {}
    assert meter.update({"elapsed_s": 1.1, "counts": {0: 137_500, 1: 1_100}}) == {0: 125_000.0, 1: 1_000.0}
    assert meter.update({"state": "idle"}) == {0: 125_000.0, 1: 1_000.0}  # no status: the last rates
    with pytest.raises(ValueError, match="window_s = 0"):
        CountRateMeter(window_s=0)


def test_numbered_file_names(tmp_path: Path) -> None:
    pytest.importorskip("PyQt6.QtWidgets")
    from gui.record_panel import following_name, next_free_name

    assert next_free_name(tmp_path) == tmp_path / "qd_0001.h5"
    for name in ("qd_0001.h5", "qd_0007.h5", "qd_x.h5", "other_0009.h5"):
        (tmp_path / name).touch()
    assert next_free_name(tmp_path) == tmp_path / "qd_0008.h5"
    assert following_name(tmp_path / "qd_0001.h5") == tmp_path / "qd_0008.h5"
    assert following_name(tmp_path / "other_0009.h5") == tmp_path / "other_0010.h5"
    assert following_name(tmp_path / "run.h5") == tmp_path / "run_0001.h5"


def test_messages_name_the_instrument_once() -> None:
    pytest.importorskip("PyQt6.QtWidgets")
    from gui.messages import ZERO_WIDTH_SPACE, breakable, field_error, run_problems, setting_error
    from labctl.errors import ConfigError

    error = ConfigError("instruments.laser.settings.external_rate_hz", 1e9, "must be between 1 and 8e7 Hz")
    assert field_error(error, "laser") == "1000000000.0 refused: must be between 1 and 8e7 Hz"
    assert setting_error(error, "laser", "external rate") == \
        "Excitation: external rate = 1000000000.0 refused: must be between 1 and 8e7 Hz"
    assert breakable("a short_text") == "a short_text"
    assert breakable("x instruments.laser.settings") == f"x instruments.{ZERO_WIDTH_SPACE}laser.{ZERO_WIDTH_SPACE}settings"
    fault = "QuTAGError: TDC_getLastTimestamps: NotConnected (2)"
    summary = SimpleNamespace(clean=False, end_reason=f"error: {fault}", errors=[fault], losses=[])
    assert run_problems(summary) == f"Time tagger failed: {fault}"
    clean = SimpleNamespace(clean=True, end_reason="stopped", errors=[], losses=[])
    assert run_problems(clean) == ""
