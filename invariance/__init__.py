"""sslbench: invariance."""
