"""Rendering rules: from stored measurements to the rows and bytes of export files.

``table`` shapes measurements into the requested table, ``decimation`` buckets them, ``writers``,
``xlsx`` and ``pdf`` turn tables into bytes on a sink (``sinks``: compression, size, checksum),
``output`` makes files and numbered parts of them, ``names`` names them and ``archive`` zips them.
"""
