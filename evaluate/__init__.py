"""sslbench: evaluate."""
