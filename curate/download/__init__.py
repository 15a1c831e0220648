"""Downloading images listed by URL: address checks, a careful fetcher, the content store and journal.

- :mod:`curate.download.urllist` reads CSV/JSONL URL lists (the offline stand-in for search results);
- :mod:`curate.download.safety` decides which URLs and addresses may be contacted;
- :mod:`curate.download.fetch` downloads one URL within hard limits and never raises for a bad server;
- :mod:`curate.download.store` keeps bytes by sha256 and journals each URL's outcome;
- :mod:`curate.download.collector` runs one shard's downloads on a thread pool.

The ``collect`` stage for URL lists (:mod:`curate.stages.download`) ties them together.
"""
