"""``labctl info FILE``: what a Photon-HDF5 file holds, in a few lines."""

from __future__ import annotations

import math
import os

from labctl.storage import layout as L
from labctl.storage.reader import PhotonHDF5Reader


def _si(value: float, unit: str) -> str:
    """``value`` with an SI prefix: 1.5e-9, "s" -> "1.5 ns"."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"),
                           (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def describe_file(path: str | os.PathLike[str]) -> str:
    """The summary that ``labctl info FILE`` prints: format, run, photons, losses, end record, size."""
    with PhotonHDF5Reader(path) as r:
        size_bytes = os.path.getsize(r.path)
        ident = r.identity()
        labctl_file = r.is_labctl_file
        lines = [f"file:        {r.path}",
                 *(f"!! warning:  {w}" for w in r.warnings()),
                 f"format:      Photon-HDF5 {r.format_version or '(version unknown)'}",
                 f"creator:     {ident.get('software', '?')} {ident.get('software_version', '')}".rstrip()
                 + (f", author {ident['author']}" if ident.get("author") else "")
                 + (f", created {ident['creation_time']}" if ident.get("creation_time") else "")]
        if labctl_file:
            lines.append(f"run id:      {r.run_id}")
        duration_s = r.acquisition_duration_s
        n = r.num_photons
        if not duration_s and n:
            ts = r._dataset(L.TIMESTAMPS)
            duration_s = float(int(ts[n - 1]) - int(ts[0])) * r.timestamps_unit_s  # Python ints: a damaged file may span beyond int64
        lines.append(f"duration:    {duration_s:.6g} s" if duration_s else "duration:    unknown")
        lines.append(f"photons:     {n:,}")
        labels = r.detector_labels
        for det_id, count in sorted(r.photon_counts().items()):
            rate = f", {_si(count / duration_s, 'cps')}" if duration_s else ""
            label = f" ({labels[det_id]})" if det_id in labels else ""
            lines.append(f"  detector {det_id}{label}: {count:,}{rate}")
        lines.append(f"timestamps:  unit {_si(r.timestamps_unit_s, 's')}")
        unit_s = r.nanotimes_unit_s
        if unit_s is None:
            lines.append("nanotimes:   none")
        else:
            bins = r.tcspc_num_bins
            span = f", {bins:,} bins (range {_si(bins * unit_s, 's')})" if bins else ""
            note = "; -1 = photon before the first laser sync" if labctl_file else ""
            lines.append(f"nanotimes:   unit {_si(unit_s, 's')}{span}{note}")
        rate_hz = r.laser_repetition_rate_hz
        if rate_hz:
            lines.append(f"laser:       {_si(rate_hz, 'Hz')} repetition rate")
        if labctl_file:
            lines.append(f"markers:     {len(r.markers()):,}")
            losses = r.losses()
            if not losses:
                lines.append("losses:      none recorded")
            else:
                lost_s = sum(x.duration_ps for x in losses) * 1e-12
                lines.append(f"losses:      !! DATA LOST: {len(losses)} stretch(es), {_si(lost_s, 's')} in total; "
                             "rates, g(2) and traces across them are incomplete")
                for x in losses:
                    syncs = f", {x.missing_syncs:,} laser syncs missing" if x.missing_syncs >= 0 else ""
                    lines.append(f"  !! lost {x.start_ps * 1e-12:.6f} s .. {x.stop_ps * 1e-12:.6f} s "
                                 f"({_si(x.duration_ps * 1e-12, 's')}{syncs}) [{x.source}]")
            repair = r.repair_record()
            if repair is not None:
                lines.append(f"repaired:    from {repair['source_file']}: {repair['photons_recovered']:,} of "
                             f"{repair['photons_declared']:,} photons recovered ({repair['photons_lost']:,} lost)")
            end = r.run_end()
            if end is None:
                lines.append("end:         no end record: the run did not close cleanly (crash?), or it is "
                             "still being written; data up to the last flush are readable")
            elif end["clean"]:
                lines.append(f"end:         clean ({end['end_reason']})")
            else:
                lines.append(f"end:         NOT CLEAN: {end['end_reason']}")
                lines.extend(f"  error: {e}" for e in end["errors"])
    lines.append(f"file size:   {_si(size_bytes, 'B')} ({size_bytes:,} bytes)")
    return "\n".join(lines)
