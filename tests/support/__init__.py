"""Shared test infrastructure: throw-away services, Celery processes and a headless browser.

See README.md in this folder for the fixtures built on top of these modules.
"""
