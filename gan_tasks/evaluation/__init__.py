"""Evaluation: from a trained trial to numbers and a report.

Per trial: evaluate.py (what is measured per dataset and program), conditional.py / cyclegan.py
(those programs' own metrics), metrics.py (mode coverage), fidelity.py
(torch-fidelity's IS/FID/KID/PR), classifier.py (the in-domain classifier). Per sweep: seeds.py
(a seed's result, defined once: a completed trial's final evaluation), rankings.py
(cells over seeds), published.py (a paper's table beside ours), compare.py (against the previous
sweep), report.py (the HTML report), queries.py (cross-sweep queries), budget.py and search_report.py
(a search's best-at-budget curves and confirm stage: docs/search.md); stats.py (every test, interval
and correction they use: docs/statistics.md). The top room: nothing in
methods/, data/, config/ or training/ imports it.
"""
