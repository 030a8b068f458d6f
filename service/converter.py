"""Build the container limits and the LibreOffice converter that the pipeline is given."""

from __future__ import annotations

import logging

from ingest.containers import Limits
from ingest.convert import LibreOfficeConverter
from ingest.pipeline import Converter
from service.config import Settings

logger = logging.getLogger(__name__)

_warned_missing = False


def container_limits(settings: Settings) -> Limits:
    limits = settings.limits
    return Limits(
        max_members=limits.zip_max_members,
        max_total_bytes=limits.zip_max_total_bytes,
        max_ratio=limits.zip_max_ratio,
        max_depth=limits.mime_max_depth,
    )


def converter(settings: Settings) -> Converter | None:
    """Return the LibreOffice conversion function, or None when soffice is not installed.

    The look-up runs for every mail, so LibreOffice installed while the service runs is used at once.
    """
    global _warned_missing
    office = LibreOfficeConverter(binary=settings.libreoffice.path, timeout=settings.libreoffice.timeout)
    if office.available:
        return office.convert
    if not _warned_missing:
        logger.warning("libreoffice: soffice not found (configured path: %s); .doc, .wps and .et files "
                       "get a save-as reply", settings.libreoffice.path or "none, searched PATH")
        _warned_missing = True
    return None
