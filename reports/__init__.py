"""sslbench: reports."""
