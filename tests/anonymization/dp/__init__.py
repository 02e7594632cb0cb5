"""Tests of the differential privacy library (anonymization.dp)."""
