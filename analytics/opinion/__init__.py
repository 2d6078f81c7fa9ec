"""Online public-opinion understanding (网络舆情), as plain functions (issue 14).

A post is a short Chinese text, maybe a GPS point and a time.  This package says where it
is about, what it reports and which topic it belongs to, using only our own layers:

- :mod:`analytics.opinion.gazetteer`: place names from the sample's layers (communities,
  villages, unit grids, landmarks, rivers) with aliases, and a longest-match scanner with
  fuzzy (one-character) matching, giving a place, a point or area and a confidence, or
  "unknown" below a threshold (:func:`~analytics.opinion.gazetteer.build_gazetteer`,
  :meth:`~analytics.opinion.gazetteer.Gazetteer.geoparse`);
- :mod:`analytics.opinion.category`: the catalogue's case categories or "not actionable",
  by keyword rules or a small classifier trained on labelled posts;
- :mod:`analytics.opinion.topics`: near-duplicate detection (MinHash over character
  shingles) and same-issue grouping (same place and category within a sliding window);
- :mod:`analytics.opinion.pipeline`: all three over a frame of posts
  (:func:`~analytics.opinion.pipeline.understand`);
- :mod:`analytics.opinion.evaluate`: accuracy against a generator's truth.

The serving side (collection, poller, topics to cases, screen, report) wraps these.
"""

from __future__ import annotations
