"""KPI targets: outcome data, periods, metrics, targets, reports and champion/challenger comparisons.

Outcome tables (:mod:`.outcomes`) are measured over calendar periods (:mod:`.periods`) by the metrics that
plugins register (:mod:`.metrics`; the built-in ones are in :mod:`collectrules.builtin.metrics`); the
policy's ``kpis:`` targets are judged by :mod:`.targets`, experiment arms compared by :mod:`.experiments`,
and :mod:`.report` renders the result.
"""
