"""sslbench: synthetic datasets with controlled factors of variation."""
