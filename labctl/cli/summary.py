"""Human-readable run summaries and progress lines (used by the CLI; no I/O here)."""

from __future__ import annotations

from typing import Any

from labctl.blocks import ChannelMap, LossRecord
from labctl.run import RunSummary


def channel_names(channels: ChannelMap) -> dict[int, str]:
    """Tagger channel -> signal name."""
    return {ch: name for name, ch in channels.as_dict().items() if ch is not None}


def format_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} GiB"


def format_loss(loss: LossRecord, origin_ps: int = 0) -> str:
    """One loss record as text: source, range in s from ``origin_ps``, length, missing syncs."""
    start_s = (loss.start_ps - origin_ps) * 1e-12
    stop_s = (loss.stop_ps - origin_ps) * 1e-12
    missing = f", {loss.missing_syncs} syncs missing" if loss.missing_syncs >= 0 else ""
    return f"{loss.source}: {start_s:.6f} s .. {stop_s:.6f} s ({(stop_s - start_s) * 1e3:.3f} ms{missing})"


def format_summary(summary: RunSummary, channels: ChannelMap, origin_ps: int = 0) -> str:
    """The closing summary of ``labctl acquire``: rates per channel, photons, losses, file."""
    names = channel_names(channels)
    state = "clean" if summary.clean else "NOT clean"
    lines = [f"run ended: {summary.end_reason} ({state})", f"duration         {summary.duration_s:.3f} s of tagger time"]
    rates = summary.rates_cps()
    for ch in sorted(summary.counts):
        lines.append(f"channel {ch:3d} {names.get(ch, '?'):<12} {summary.counts[ch]:>12,d} tags {rates[ch]:>14,.1f} /s")
    lines.append(f"photons written  {summary.photons_written:,d}")
    if summary.measured_sync_period_ps:
        lines.append(f"laser period     {summary.measured_sync_period_ps:,.1f} ps (measured from the sync stream)")
    if summary.losses:
        lost_ms = sum(loss.duration_ps for loss in summary.losses) * 1e-9
        lines.append(f"LOSSES           {len(summary.losses)} ({lost_ms:.3f} ms of stream):")
        lines.extend("  " + format_loss(loss, origin_ps) for loss in summary.losses[:20])
        if len(summary.losses) > 20:
            lines.append(f"  ... and {len(summary.losses) - 20} more (labctl info FILE lists all)")
    else:
        lines.append("losses           none")
    for error in summary.errors:
        lines.append(f"ERROR            {error}")
    lines.extend(f"safe state       {action}" for action in summary.safe_state_actions)
    lines.extend(f"WARNING          {warning}" for warning in summary.safe_state_warnings)
    if summary.file_path:
        lines.append(f"file             {summary.file_path} ({format_bytes(summary.file_size_bytes)})")
    return "\n".join(lines)


def format_progress(status: dict[str, Any], duration_s: float | None, channels: ChannelMap, width: int = 24) -> str:
    """A one-line progress bar from an engine status snapshot."""
    elapsed = float(status.get("elapsed_s", 0.0))
    if duration_s:
        done = min(1.0, elapsed / duration_s)
        bar = "#" * int(done * width) + "-" * (width - int(done * width))
        head = f"[{bar}] {elapsed:6.2f}/{duration_s:.2f} s"
    else:
        head = f"{elapsed:8.2f} s"
    counts = status.get("counts", {})
    names = channel_names(channels)
    parts = []
    if elapsed > 0:
        for ch in (channels.spad_a, channels.spad_b):
            parts.append(f"{names[ch]} {counts.get(ch, 0) / elapsed / 1e3:7.2f} kcps")
    losses = status.get("losses", 0)
    parts.append(f"photons {status.get('photons_written', 0):,d}")
    parts.append(f"LOSSES {losses}" if losses else "losses 0")
    return head + "  " + "  ".join(parts)
