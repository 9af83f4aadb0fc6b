"""Speak the ecosystem's protocols: Prometheus exposition and scraping, remote_write, OTLP/HTTP, Parquet export.

Modules: ``exposition`` (the text/OpenMetrics parser), ``scrape`` (``[[scrape]]`` configuration and
file-based targets), ``scraper`` (the owner service that scrapes), ``remote_write`` and ``otlp`` (receivers
on the owner API), ``bulk`` (columnar writes), ``export`` (Parquet). Import the module you need.
"""
