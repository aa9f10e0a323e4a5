"""rrdalarm: threshold alarms over RRD files and ntopng timeseries."""

__version__ = "0.1.0"

import logging as _logging

# A library's records go where the face that runs it sends them (serve logs them); the CLI stays quiet.
_logging.getLogger("rrdalarm").addHandler(_logging.NullHandler())
