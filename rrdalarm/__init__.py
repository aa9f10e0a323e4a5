"""rrdalarm: threshold alarms over RRD files and ntopng timeseries."""

__version__ = "0.1.0"
