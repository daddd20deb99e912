"""Periodic reports (docs/reports.md): a month's (or an on-demand period's) KPIs by tier
with targets and ranks, scorecards, alert and response summaries for one province or
the nation, read in one database snapshot (:mod:`.content`), written as XLSX and CSV
(:mod:`.render`), claimed and stored once per (scope, grain, period) (:mod:`.store`).
"""
