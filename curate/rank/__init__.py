"""Ranking each identity's images and checking identities (the ``rank`` stage's library).

* :mod:`curate.rank.scorers` — the scorer interface and the classifier, centre and cluster scorers;
* :mod:`curate.rank.cohort` — cohort-normalised similarity against a calibrated, pose-aware threshold;
* :mod:`curate.rank.registry` — the scorers by name;
* :mod:`curate.rank.settings` — the scorer names and the settings the library reads (no stage import);
* :mod:`curate.rank.selftrain` — the self-training rounds (positives, negatives, keep top K);
* :mod:`curate.rank.overlap` — identities that look like one person, and estimated identity purity.

The stage that applies them to manifests is :class:`curate.stages.rank.RankStage`.
"""
