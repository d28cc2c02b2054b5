"""The information officer's reports (issue #19 item 4), one module each: ``salesday`` (SALESDAY, daily to
the OEM), ``rvweek`` (RVWEEK, weekly), ``complaints`` (COMPLAINTMONTH, monthly), ``managers`` (the
periodic-maintenance solicitation list and the showroom / lead statistics for the dealership's own
managers); ``publish`` writes a report's bytes and uploads them exactly once; ``periods`` parses
``--date`` / ``--week`` / ``--month``."""
