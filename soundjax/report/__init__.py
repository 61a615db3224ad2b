"""What experiments write into a workdir: JSON and Markdown tables, figures, and the HTML page
that shows them all (`write_html_report`; rebuild it with `python -m soundjax.report WORKDIR`).
"""

from soundjax.report.figures import (
                                     ensure_dir,
                                     plot_confusion_matrix,
                                     plot_curves,
                                     plot_heatmap,
                                     plot_spectrograms,
)
from soundjax.report.html import REPORT_NAME, write_html_report
from soundjax.report.processes import on_process_zero
from soundjax.report.tables import markdown_table, mean_std, write_json

__all__ = ["REPORT_NAME", "ensure_dir", "markdown_table", "mean_std", "on_process_zero",
           "plot_confusion_matrix", "plot_curves", "plot_heatmap", "plot_spectrograms",
           "write_html_report", "write_json"]
