"""The paper's single-QD analysis (Vonk et al. 2025, Fig. 4) as a Python API: ``report_file`` per file,
``write_report`` for report.json + report.html + PNGs; ``labctl report`` is a thin front.

Modules by job: ``options`` (ReportOptions), ``photons`` (file to arrays, IRF alignment),
``background`` (afterpulse veto, flat level before the rise), ``lifetime_bins`` (per-bin
mean lifetimes, shot-noise limit), ``regimes`` (decay fits per lifetime regime),
``spectra_select`` (spectra per regime, trap spectrum), ``g2_biexciton`` (g2(0), biexciton
QY), ``report`` (report_file), ``report_html`` (write_report).
"""

from labctl.analysis.fig4.options import ReportOptions, parse_regimes
from labctl.analysis.fig4.report import report_file
from labctl.analysis.fig4.report_html import write_report

__all__ = ["ReportOptions", "parse_regimes", "report_file", "write_report"]
