"""Failure intelligence: fingerprints of FAILED targets, failed-since, state transitions and connector health."""
