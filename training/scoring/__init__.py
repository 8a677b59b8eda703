"""Scoring: the metrics of one clip, fullband and level diagnostics, the classic baseline, stream mode and the
plots."""
