"""sslbench: pretrain."""
