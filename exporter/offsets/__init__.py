"""Connector offsets (KIP-875): sink committed offsets, offset changes, and sink lag from the Kafka brokers."""
