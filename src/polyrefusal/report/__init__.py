"""The report: score tables, plots, and report.md / report.html from the same document."""
